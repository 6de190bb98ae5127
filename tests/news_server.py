"""A news site on loopback for the tests of fetching and feeds: article pages, an RSS feed with ETag and
Last-Modified, and the ways real sites go wrong (a 20 MB page, a page that trickles, a PDF, broken XML, a
redirect into the private network, a 404). Every response is bounded in size and time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.pages import article_page, rss_feed

Route = Callable[["Handler"], None]


class NewsSite:
    """Serves `pages` (path -> HTML) and `feed` (RSS) on 127.0.0.1; `hits` counts requests per path and
    `user_agents` records who asked."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        self.feed_entries: list[tuple[str, str, str, date]] = []
        self.feed_version = "v1"
        self.hits: dict[str, int] = {}
        self.user_agents: list[str] = []
        self.not_modified = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.site = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add_story(self, slug: str, title: str, day: date, paragraphs: tuple[str, ...] | None = None) -> str:
        """An article page at /news/<slug>.html, listed in the feed; returns its URL."""
        path = f"/news/{slug}.html"
        extra = {"paragraphs": paragraphs} if paragraphs else {}
        self.pages[path] = article_page(title=title, published=day, canonical=self.url(path), **extra)
        self.feed_entries.append((f"urn:story:{slug}", self.url(path), title, day))
        self.feed_version = f"v{len(self.feed_entries)}-{time.monotonic_ns()}"
        return self.url(path)

    def feed(self) -> str:
        return rss_feed(self.feed_entries)

    def start(self) -> NewsSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def rotterdam_site() -> Iterator[NewsSite]:
    """A running site with one story, the fixture of the fetching, feed and news-in tests (each picks its scope)."""
    server = NewsSite().start()
    server.add_story("rotterdam", "Rotterdam port traffic falls again", date(2024, 10, 29))
    try:
        yield server
    finally:
        server.stop()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def site(self) -> NewsSite:
        return self.server.site  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        self.site.hits[path] = self.site.hits.get(path, 0) + 1
        self.site.user_agents.append(self.headers.get("User-Agent", ""))
        if path in self.site.pages:
            self._send(200, self.site.pages[path].encode(), "text/html; charset=utf-8")
        elif path == "/feed.xml":
            self._feed()
        elif path == "/big.html":
            self._big()
        elif path == "/slow.html":
            self._slow()
        elif path == "/report.pdf":
            self._send(200, b"%PDF-1.7\n" + b"0" * 2000, "application/pdf")
        elif path == "/broken.xml":
            self._send(200, b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>Cut', "application/rss+xml")
        elif path == "/garbage.xml":
            self._send(200, b"\x00\x01 this is not XML at all", "application/rss+xml")
        elif path.startswith("/to-private"):
            target = "http://169.254.169.254/latest/meta-data/" if path.endswith("metadata") else "http://10.0.0.7/"
            self._send(302, b"", "text/plain", Location=target)
        elif path == "/to-page":
            self._send(301, b"", "text/plain", Location="/news/" + next(iter(self.site.pages)).split("/news/")[-1])
        else:
            self._send(404, b"<html><body>Not found</body></html>", "text/html")

    def _feed(self) -> None:
        etag = f'"{self.site.feed_version}"'
        modified = "Tue, 29 Oct 2024 08:00:00 GMT"
        if self.headers.get("If-None-Match") == etag:
            self.site.not_modified += 1
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(200, self.site.feed().encode(), "application/rss+xml", ETag=etag, Last_Modified=modified)

    def _big(self) -> None:
        """20 MB of page, without a Content-Length: the cap must hold while reading."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.end_headers()
        block = b"<p>" + b"filler " * 145 + b"</p>\n"
        sent = 0
        try:
            while sent < 20 << 20:
                self.wfile.write(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def _slow(self) -> None:
        """A page that trickles a few bytes every 0.2 s, for at most 20 s."""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Connection", "close")
        self.end_headers()
        deadline = time.monotonic() + 20
        try:
            while time.monotonic() < deadline:
                self.wfile.write(b"<p>a</p>")
                self.wfile.flush()
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True
