"""A Chroma server stopped by SIGSTOP: questions and writes get a 503 naming the store within its deadline (a
replica keeps no texts or vectors: it reads them from the store), /metrics answers at once, /health says
unavailable, and the service is back as soon as the server is (bench/hung_store.py runs the same recipe for
longer)."""

from __future__ import annotations

from bench.hung_store import failures, run


def test_a_hung_chroma_server_costs_requests_a_deadline_not_a_hang() -> None:
    result = run(hang_seconds=6.0, readers=4, store_timeout=2.0)
    assert failures(result, slack=2.0) == [], result
    assert "did not answer within 2 s" in result.unavailable_detail
    assert set(result.statuses["/query"]) == {"200", "503"}  # answered before the hang and after it, 503 in it
    assert set(result.statuses["/metrics"]) == {"200"}
    assert set(result.statuses.get("/documents", {"503": 1})) == {"503"}  # writes need the store: 503, in time
