"""API keys and per-key rate limits.

Writes need a key from RAG_API_KEYS; with none configured, writes are disabled rather than open.
Keys are compared in constant time. Each key has a token bucket of RAG_RATE_LIMIT_PER_MINUTE, and
each client address one of RAG_AUTH_FAILURES_PER_MINUTE wrong keys: once it is spent, every key
from that address waits (a right key too, or its success would tell a guesser that it is right).
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

    def __init__(self, per_minute: int, max_buckets: int = 100_000) -> None:
        self._rate = per_minute / 60.0
        self._capacity = float(per_minute)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._max_buckets = max_buckets
        self._lock = threading.Lock()

    def retry_after(self, key: str, spend: bool = True) -> float:
        """0 when the request may proceed (and, with `spend`, is counted); else seconds until it may."""
        if self._capacity <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - stamp) * self._rate)
            if tokens >= 1.0:
                if spend:
                    self._store(key, tokens - 1.0, now)
                return 0.0
            self._store(key, tokens, now)
            return (1.0 - tokens) / self._rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        if key not in self._buckets and len(self._buckets) >= self._max_buckets:
            # Buckets keyed by client address are many: drop those that have refilled (they equal no entry).
            full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * self._rate >= self._capacity]
            for k in full:
                del self._buckets[k]
        self._buckets[key] = (tokens, now)


class KeyGuard:
    """Decides whether a request may read or write, by the key it presents."""

    def __init__(
        self, keys: tuple[str, ...], require_key_for_read: bool, per_minute: int, failures_per_minute: int = 20
    ) -> None:
        self._digests = [hashlib.sha256(k.encode()).digest() for k in keys]
        self._require_for_read = require_key_for_read
        self._limiter = RateLimiter(per_minute)
        self._failures = RateLimiter(failures_per_minute)

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
        client = request.client.host if request.client else ""
        wait = self._failures.retry_after(client, spend=False)
        if wait > 0:
            raise _too_many(wait, "too many requests with a wrong API key from this address")
        if not self._matches(key):
            self._failures.retry_after(client)
            raise HTTPException(403, "the API key is not valid")
        wait = self._limiter.retry_after(hashlib.sha256(key.encode()).hexdigest())
        if wait > 0:
            raise _too_many(wait, "rate limit exceeded for this key")


def _too_many(wait: float, reason: str) -> HTTPException:
    seconds = str(math.ceil(wait))
    return HTTPException(429, f"{reason}; retry in {seconds} s", headers={"Retry-After": seconds})
