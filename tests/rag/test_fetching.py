"""Fetching against a news site on loopback: limits, redirects, and the private-address guard."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from rag.errors import FetchFailed, FetchRefused
from rag.fetching import USER_AGENT, Fetcher, FetchPolicy, check_url, fetch_article, url_article_id
from tests.news_server import NewsSite, rotterdam_site

LOOPBACK = FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_seconds=5.0)


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    with rotterdam_site() as server:
        yield server


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    made = Fetcher(LOOPBACK)
    yield made
    made.close()


def test_a_page_is_fetched_with_an_honest_user_agent(site: NewsSite, fetcher: Fetcher) -> None:
    fetched = fetcher.get(site.url("/news/rotterdam.html"))
    assert (fetched.status, fetched.kind) == (200, "page")
    assert site.user_agents[-1] == USER_AGENT and "newsrag" in USER_AGENT
    article = fetch_article(fetcher, site.url("/news/rotterdam.html"))
    assert article.title == "Rotterdam port traffic falls again"
    assert article.url == site.url("/news/rotterdam.html") and article.source_file is None
    assert article.id == url_article_id(site.url("/news/rotterdam.html"))


def test_a_redirect_within_the_site_is_followed(site: NewsSite, fetcher: Fetcher) -> None:
    fetched = fetcher.get(site.url("/to-page"))
    assert fetched.url == site.url("/news/rotterdam.html")


@pytest.mark.parametrize("path", ["/to-private", "/to-private-metadata"])
def test_a_redirect_into_the_private_network_is_refused(site: NewsSite, fetcher: Fetcher, path: str) -> None:
    with pytest.raises(FetchRefused, match="private, loopback or link-local"):
        fetcher.get(site.url(path))


def test_loopback_is_refused_unless_allowed(site: NewsSite) -> None:
    before = site.hits.get("/news/rotterdam.html", 0)
    closed = Fetcher(FetchPolicy())
    for url in (site.url("/news/rotterdam.html"), site.url("/news/rotterdam.html").replace("127.0.0.1", "localhost")):
        with pytest.raises(FetchRefused, match="RAG_FETCH_ALLOW"):
            closed.get(url)
    assert site.hits.get("/news/rotterdam.html", 0) == before  # refused before any connection
    assert Fetcher(FetchPolicy(allow_private=True)).get(site.url("/news/rotterdam.html")).status == 200


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/",
        "http://192.168.0.1/admin",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://2130706433/",  # 127.0.0.1 written as a number
        "http://100.64.0.1/",  # carrier-grade NAT
    ],
)
def test_private_addresses_in_any_spelling_are_refused(url: str) -> None:
    with pytest.raises(FetchRefused):
        check_url(url, FetchPolicy())


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a", "gopher://x/", "http://user:pw@example.com/"]
)
def test_only_plain_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(FetchRefused):
        check_url(url, FetchPolicy())


def test_a_20_mb_page_is_cut_off_at_the_cap(site: NewsSite, fetcher: Fetcher) -> None:
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="larger than the 5242880-byte limit"):
        fetcher.get(site.url("/big.html"))
    assert time.monotonic() - started < 5


def test_a_slow_page_ends_at_the_deadline(site: NewsSite) -> None:
    slow = Fetcher(FetchPolicy(allow_networks=("127.0.0.0/8",), timeout_seconds=1.0))
    started = time.monotonic()
    with pytest.raises(FetchFailed, match="within 1 seconds"):
        slow.get(site.url("/slow.html"))
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("path", "message"),
    [("/report.pdf", "not an HTML page or a feed (content type application/pdf)"), ("/gone.html", "answered 404")],
)
def test_what_is_not_a_page_says_so(site: NewsSite, fetcher: Fetcher, path: str, message: str) -> None:
    with pytest.raises(FetchFailed, match=message.replace("(", r"\(").replace(")", r"\)")):
        fetcher.get(site.url(path))


def test_a_feed_is_told_from_a_page_and_polled_conditionally(site: NewsSite, fetcher: Fetcher) -> None:
    first = fetcher.get(site.url("/feed.xml"))
    assert first.kind == "feed" and first.etag and first.last_modified
    again = fetcher.get(site.url("/feed.xml"), first.etag, first.last_modified)
    assert (again.status, again.body) == (304, b"")
