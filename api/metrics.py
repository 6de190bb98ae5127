"""Prometheus metrics, one registry per app (so several apps in one process don't collide)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # The process (CPU, resident memory, open files), the interpreter's collections and its version.
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.requests = Counter(
            "newsrag_requests_total",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "newsrag_request_duration_seconds",
            "HTTP request latency.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.articles = Gauge("newsrag_index_articles", "Articles in this replica's index.", registry=self.registry)
        self.chunks = Gauge("newsrag_index_chunks", "Chunks in this replica's index.", registry=self.registry)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, articles: int | None, chunks: int | None) -> bytes:
        if articles is not None:
            self.articles.set(articles)
        if chunks is not None:
            self.chunks.set(chunks)
        return bytes(generate_latest(self.registry))
