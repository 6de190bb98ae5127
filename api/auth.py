"""API keys and per-key rate limits.

Writes need a key from RAG_API_KEYS; with none configured, writes are disabled rather than open.
Keys are compared in constant time. Each key may make RAG_RATE_LIMIT_PER_MINUTE requests in any minute
(a moving window, counted by the `limits` library): in this process by default, so each replica counts
its own, or across every replica with RAG_RATE_LIMIT_STORAGE=redis://host:6379.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time

from fastapi import HTTPException, Request
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger("newsrag.api")
# A shared counter store that does not answer within this long lets the request through (logged): the limit
# protects the service, and must not become the reason it is down.
_STORAGE_TIMEOUT_SECONDS = 0.5
_SKIP_AFTER_FAILURE_SECONDS = 30.0


class RateLimiter:
    """`per_minute` requests per key in any 60 s, counted in `storage_uri` (memory:// or redis://...)."""

    def __init__(self, per_minute: int, storage_uri: str = "memory://") -> None:
        self._item = RateLimitItemPerMinute(per_minute) if per_minute > 0 else None
        options: dict[str, float | str | bool] = {}
        if storage_uri.startswith(("redis://", "rediss://", "redis+unix://")):
            options = {"socket_timeout": _STORAGE_TIMEOUT_SECONDS, "socket_connect_timeout": _STORAGE_TIMEOUT_SECONDS}
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self._failing_since: float | None = None

    def retry_after(self, key: str) -> float:
        """0 when the request may proceed (and is counted); else seconds until it may."""
        if self._item is None:
            return 0.0
        if self._failing_since is not None and time.monotonic() - self._failing_since < _SKIP_AFTER_FAILURE_SECONDS:
            return 0.0  # the counter store failed a moment ago: not asked again (each try costs its timeout)
        try:
            if self._limiter.hit(self._item, key):
                self._failing_since = None
                return 0.0
            reset, _ = self._limiter.get_window_stats(self._item, key)
        except Exception as exc:  # the shared counter store failed: let requests through a while, and say so
            self._failing_since = time.monotonic()
            log.warning(
                "rate limit not enforced for %g s: its counter store failed: %s: %s",
                _SKIP_AFTER_FAILURE_SECONDS,
                type(exc).__name__,
                exc,
            )
            return 0.0
        return max(reset - time.time(), 0.001)


class KeyGuard:
    """Decides whether a request may read or write, by the key it presents."""

    def __init__(
        self, keys: tuple[str, ...], require_key_for_read: bool, per_minute: int, storage_uri: str = "memory://"
    ) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        self._require_for_read = require_key_for_read
        self._limiter = RateLimiter(per_minute, storage_uri)

    @staticmethod
    def presented(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return request.headers.get("x-api-key") or None

    def _matches(self, key: str) -> bool:
        digest = hashlib.sha256(key.encode()).digest()
        found = False
        for known in self._digests:  # no early exit: the time taken does not tell which key matched
            found |= hmac.compare_digest(digest, known)
        return found

    def check(self, request: Request, write: bool) -> None:
        """Raise 401/403/429 (problem+json via the handlers) unless the request may proceed."""
        key = self.presented(request)
        if write and not self._digests:
            raise HTTPException(403, "writes are disabled: the server has no API keys configured (RAG_API_KEYS)")
        if not write and not self._require_for_read:
            return
        if key is None:
            raise HTTPException(
                401,
                "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not self._matches(key):
            raise HTTPException(403, "the API key is not valid")
        wait = self._limiter.retry_after(hashlib.sha256(key.encode()).hexdigest())
        if wait > 0:
            raise HTTPException(
                429,
                f"rate limit exceeded for this key; retry in {math.ceil(wait)} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )
