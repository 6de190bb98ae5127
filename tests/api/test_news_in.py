"""`rag serve` (a separate process) taking news in over real HTTP: POST /documents/url, and RAG_FEEDS polled in
the background with each feed's state on /health and /metrics. The pages and feeds come from a news site on
loopback (RAG_FETCH_ALLOW_NETWORKS=127.0.0.0/8)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from bench.service import running_service
from tests.conftest import SEEDS
from tests.news_server import NewsSite, rotterdam_site

KEY = "news-in-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    with rotterdam_site() as server:
        yield server


@pytest.fixture(scope="module")
def service(site: NewsSite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    seeds = tmp_path_factory.mktemp("seeds")
    (seeds / "002.txt").write_bytes((SEEDS / "002_353d98a7930780b3.txt").read_bytes())
    env = {
        "RAG_DATA_DIR": str(tmp_path_factory.mktemp("news-in")),
        "RAG_SEEDS_DIR": str(seeds),
        "RAG_API_KEYS": KEY,
        "RAG_FETCH_ALLOW_NETWORKS": "127.0.0.0/8",
        "RAG_FETCH_TIMEOUT_SECONDS": "3",
        "RAG_FEEDS": site.url("/feed.xml"),
        "RAG_FEED_EVERY_SECONDS": "1",
    }
    with running_service(env, timeout=180) as (url, _):
        yield url


def test_a_url_becomes_an_article(service: str, site: NewsSite) -> None:
    site.add_story("hamburg", "Hamburg ships more freight by rail", date(2024, 10, 30))
    page = site.url("/news/hamburg.html")
    refused = httpx.post(f"{service}/documents/url", json={"url": page})
    assert refused.status_code == 401
    response = httpx.post(
        f"{service}/documents/url", json={"url": page, "id": "hamburg-rail"}, headers=AUTH, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["ids"] == ["hamburg-rail"]
    doc = httpx.get(f"{service}/documents/hamburg-rail").json()
    assert (doc["title"], doc["url"], doc["author"]) == ("Hamburg ships more freight by rail", page, "Anna de Vries")


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/to-private-metadata", 422, "private, loopback or link-local"),
        ("/gone.html", 502, "answered 404"),
        ("/report.pdf", 502, "not an HTML page or a feed"),
        ("/big.html", 502, "byte limit"),
    ],
)
def test_a_url_that_cannot_be_stored_says_why(service: str, site: NewsSite, path: str, status: int, words: str) -> None:
    response = httpx.post(f"{service}/documents/url", json={"url": site.url(path)}, headers=AUTH, timeout=30)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize(
    "body", [{"url": "file:///etc/passwd"}, {"url": "not a url"}, {"url": "https://a.example", "x": 1}]
)
def test_a_bad_url_body_is_a_422(service: str, body: dict) -> None:
    assert httpx.post(f"{service}/documents/url", json=body, headers=AUTH).status_code == 422


def test_configured_feeds_are_polled_and_shown(service: str, site: NewsSite) -> None:
    deadline = time.monotonic() + 60
    while True:
        feeds = httpx.get(f"{service}/health").json().get("feeds") or []
        if feeds and feeds[0]["articles_added"] >= 2 and site.not_modified >= 1:
            break
        assert time.monotonic() < deadline, feeds
        time.sleep(0.2)
    [feed] = feeds
    assert feed["url"] == site.url("/feed.xml") and feed["last_error"] is None and feed["last_poll"]
    # Both stories came in, and a poll of the unchanged feed was a 304 (conditional GET).
    metrics = httpx.get(f"{service}/metrics").text
    assert f'newsrag_feed_up{{feed="{site.url("/feed.xml")}"}} 1.0' in metrics
    assert "newsrag_feed_articles_added{" in metrics
    titles = {d["title"] for d in httpx.get(f"{service}/documents").json()["documents"]}
    assert {"Rotterdam port traffic falls again", "Hamburg ships more freight by rail"} <= titles
