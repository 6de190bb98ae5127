"""Prometheus metrics, one registry per app (so several apps in one process don't collide)."""

from __future__ import annotations

from collections.abc import Sequence

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

from rag.feeds import FeedStatus

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

        # Feeds (RAG_FEEDS): read from their persisted state, so the counts span restarts.
        def feed_gauge(name: str, text: str) -> Gauge:
            return Gauge(name, text, ["feed"], registry=self.registry)

        self.feed_last_poll = feed_gauge("newsrag_feed_last_poll_timestamp_seconds", "When the feed was last polled.")
        self.feed_last_success = feed_gauge(
            "newsrag_feed_last_success_timestamp_seconds", "When a poll of the feed last succeeded."
        )
        self.feed_up = feed_gauge("newsrag_feed_up", "1 if the feed's last poll succeeded.")
        self.feed_polls = feed_gauge("newsrag_feed_polls", "Polls of the feed.")
        self.feed_errors = feed_gauge("newsrag_feed_errors", "Polls of the feed that failed.")
        self.feed_added = feed_gauge("newsrag_feed_articles_added", "Articles the feed's polls added.")

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self, articles: int | None, chunks: int | None, feeds: Sequence[FeedStatus] = ()) -> bytes:
        if articles is not None:
            self.articles.set(articles)
        if chunks is not None:
            self.chunks.set(chunks)
        for feed in feeds:
            if feed.last_poll is not None:
                self.feed_last_poll.labels(feed.url).set(feed.last_poll)
            if feed.last_success is not None:
                self.feed_last_success.labels(feed.url).set(feed.last_success)
            self.feed_up.labels(feed.url).set(0 if feed.last_error else 1)
            self.feed_polls.labels(feed.url).set(feed.polls)
            self.feed_errors.labels(feed.url).set(feed.errors)
            self.feed_added.labels(feed.url).set(feed.articles_added)
        return bytes(generate_latest(self.registry))
