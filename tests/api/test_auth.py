"""The token buckets behind the key and wrong-key limits."""

from __future__ import annotations

import pytest

from api import auth
from api.auth import RateLimiter


def test_buckets_that_refilled_are_dropped_when_there_are_too_many(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(auth.time, "monotonic", lambda: now[0])
    limiter = RateLimiter(per_minute=60, max_buckets=3)  # one token a second
    for _ in range(5):
        assert limiter.retry_after("busy") == 0.0
    assert limiter.retry_after("a") == 0.0 and limiter.retry_after("b") == 0.0
    now[0] = 2.0  # "a" and "b" have refilled; "busy" is still 3 tokens short
    assert limiter.retry_after("c") == 0.0
    assert set(limiter._buckets) == {"busy", "c"}
    assert limiter.retry_after("busy", spend=False) == 0.0 and limiter._buckets["busy"] == (55.0, 0.0)


def test_peeking_does_not_spend() -> None:
    limiter = RateLimiter(per_minute=1)
    assert limiter.retry_after("k", spend=False) == 0.0
    assert limiter.retry_after("k") == 0.0
    assert limiter.retry_after("k", spend=False) > 0
