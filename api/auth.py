"""API keys and per-key rate limits.

Writes need a key from RAG_API_KEYS; with none configured, writes are disabled rather than open.
Keys are compared in constant time. Each key has a token bucket of RAG_RATE_LIMIT_PER_MINUTE.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time

from fastapi import HTTPException, Request


class RateLimiter:
    """Token buckets by key: `per_minute` requests a minute, bursts up to the same number."""

    def __init__(self, per_minute: int) -> None:
        self._rate = per_minute / 60.0
        self._capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float:
        """0 when the request may proceed (and is counted); else seconds until it may."""
        if self._capacity <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - stamp) * self._rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate


class KeyGuard:
    """Decides whether a request may read or write, by the key it presents."""

    def __init__(self, keys: tuple[str, ...], require_key_for_read: bool, per_minute: int) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        self._require_for_read = require_key_for_read
        self._limiter = RateLimiter(per_minute)

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
