"""Fetching: one URL -> its bytes, fetched the way a fetcher inside a newsroom's network must.

Only http(s). Every host is resolved first and refused when any of its addresses is private, loopback, link-local,
multicast or otherwise not global (RAG_FETCH_ALLOW_NETWORKS lifts this for the networks it names, an intranet's
or the tests' loopback; RAG_FETCH_ALLOW_PRIVATE=true for all); the address
actually connected to is checked again, so a name that resolves one way for the check and another for the
connection (DNS rebinding) is still refused. Redirects are followed by hand, each hop checked the same way. A
size cap is held while reading (not trusted from Content-Length), a deadline covers the whole fetch (a page that
trickles a byte a second ends), and only page and feed content types are read. Feeds are polled with conditional
GET: an unchanged feed answers 304 and costs nothing. Proxies from the environment are not used, so the checked
address is the one connected to.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urljoin, urlsplit

import httpx

from rag.errors import FetchFailed, FetchRefused, InvalidDocument
from rag.extraction import ExtractionPolicy
from rag.loading import html_article
from rag.models import Article

Kind = Literal["page", "feed"]
USER_AGENT = "newsrag/0.1 (retrieval question answering over news; +https://github.com/newsrag/newsrag)"
_PAGE_TYPES = ("text/html", "application/xhtml+xml")
_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml", "text/xml")
_FEED_STARTS = (b"<rss", b"<feed", b"<rdf:rdf", b"<?xml")
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """The limits of one fetch (RAG_FETCH_*)."""

    timeout_seconds: float = 15.0  # the whole fetch: connecting, redirects and reading
    max_bytes: int = 5 << 20
    max_redirects: int = 5
    allow_private: bool = False  # every address
    allow_networks: tuple[str, ...] = ()  # or only these private networks ("10.1.0.0/16": the newsroom's CMS)
    user_agent: str = USER_AGENT

    def blocked(self, address: str) -> bool:
        """Whether connecting to `address` is refused."""
        if self.allow_private:
            return False
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_global and not ip.is_multicast:
            return False
        return not any(ip in ipaddress.ip_network(net, strict=False) for net in self.allow_networks)


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a URL answered. `status` 304: not modified since the validators sent (body empty)."""

    url: str  # after redirects
    status: int
    body: bytes
    kind: Kind | None  # None only with 304
    etag: str | None = None
    last_modified: str | None = None


def check_url(url: str, policy: FetchPolicy) -> str:
    """The URL if it may be fetched; FetchRefused (with the reason) if not. Resolves its host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchRefused(f"{url}: only http and https URLs can be fetched")
    if not parts.hostname:
        raise FetchRefused(f"{url}: no host in this URL")
    if parts.username or parts.password:
        raise FetchRefused(f"{url}: URLs with credentials in them are not fetched")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise FetchRefused(f"{url}: {exc}") from exc
    if policy.allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # the caller's URL names no host that exists
        raise FetchRefused(f"{url}: the host {parts.hostname!r} cannot be resolved") from exc
    for info in infos:
        address = str(info[4][0])
        if policy.blocked(address):
            raise FetchRefused(
                f"{url}: {parts.hostname} is a private, loopback or link-local address ({address}); "
                "RAG_FETCH_ALLOW_NETWORKS or RAG_FETCH_ALLOW_PRIVATE=true allow fetching inside a network"
            )
    return url


def _kind(content_type: str, head: bytes) -> Kind | None:
    media = content_type.split(";", 1)[0].strip().lower()
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    unlabelled = media in ("", "text/plain", "application/octet-stream")
    if media in _FEED_TYPES or (unlabelled and start.startswith(_FEED_STARTS)):
        return "feed"
    if media in _PAGE_TYPES:
        return "feed" if start.startswith((b"<rss", b"<feed")) else "page"
    if media == "" and start.startswith((b"<!doctype html", b"<html")):
        return "page"
    return None


class Fetcher:
    """Fetches pages and feeds within a FetchPolicy. Thread-safe (one httpx connection pool); close() when done."""

    def __init__(self, policy: FetchPolicy | None = None, transport: httpx.BaseTransport | None = None) -> None:
        self.policy = policy or FetchPolicy()
        self._client = httpx.Client(
            follow_redirects=False,
            trust_env=False,
            transport=transport,
            timeout=httpx.Timeout(self.policy.timeout_seconds),
            headers={"User-Agent": self.policy.user_agent, "Accept-Encoding": "gzip, deflate"},
        )

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        """GET a page or feed; FetchRefused for a URL that may not be fetched, FetchFailed when it cannot be."""
        deadline = time.monotonic() + self.policy.timeout_seconds
        headers = {"Accept": "text/html, application/xhtml+xml, application/rss+xml, application/atom+xml, */*;q=0.5"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        for _ in range(self.policy.max_redirects + 1):
            check_url(current, self.policy)
            try:
                with self._client.stream("GET", current, headers=headers) as response:
                    self._check_peer(current, response)
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    return self._read(current, response, deadline)
            except httpx.TimeoutException as exc:
                raise FetchFailed(f"{current}: no answer within {self.policy.timeout_seconds:g} seconds") from exc
            except httpx.HTTPError as exc:
                raise FetchFailed(f"{current}: {exc.__class__.__name__}: {exc}") from exc
        raise FetchFailed(f"{url}: more than {self.policy.max_redirects} redirects")

    def _check_peer(self, url: str, response: httpx.Response) -> None:
        if self.policy.allow_private:
            return
        stream = response.extensions.get("network_stream")
        peer = stream.get_extra_info("server_addr") if stream is not None else None
        if peer and self.policy.blocked(str(peer[0])):
            raise FetchRefused(f"{url}: connected to a private address ({peer[0]}); refused")

    def _read(self, url: str, response: httpx.Response, deadline: float) -> Fetched:
        validators = {"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")}
        if response.status_code == 304:
            return Fetched(url, 304, b"", None, **validators)
        if response.status_code >= 400:
            raise FetchFailed(f"{url}: the server answered {response.status_code} {response.reason_phrase}")
        if response.status_code != 200:
            raise FetchFailed(f"{url}: the server answered {response.status_code}, not a page")
        limit = self.policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchFailed(f"{url}: larger than the {limit}-byte limit ({declared} bytes)")
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limit:
                raise FetchFailed(f"{url}: larger than the {limit}-byte limit")
            if time.monotonic() > deadline:
                raise FetchFailed(f"{url}: not all read within {self.policy.timeout_seconds:g} seconds")
        content_type = response.headers.get("content-type", "")
        kind = _kind(content_type, bytes(body[:512]))
        if kind is None:
            raise FetchFailed(f"{url}: not an HTML page or a feed (content type {content_type or 'none'})")
        return Fetched(url, 200, bytes(body), kind, **validators)


_SLUG = re.compile(r"[^A-Za-z0-9]+")


def url_article_id(url: str) -> str:
    """A stable, readable article id for a URL: its host and last path segment, and a short hash of the whole
    URL so that two pages never share one ("harbourtimes.example-rotterdam-port-traffic-3f2a9c1e")."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    last = segments[-1].rsplit(".", 1)[0] if segments else ""
    host = (parts.hostname or "").removeprefix("www.")
    slug = _SLUG.sub("-", f"{host}-{last}").strip("-")[:100] or "page"
    return f"{slug}-{hashlib.sha256(url.encode('utf-8')).hexdigest()[:8]}"


def page_article(fetched: Fetched, article_id: str, policy: ExtractionPolicy | None = None) -> Article:
    """The article of a fetched page; a feed is refused (a feed is polled, not stored as an article)."""
    if fetched.kind != "page":
        raise InvalidDocument(f"{fetched.url}: a feed, not an article page")
    return html_article(fetched.body, "page.html", article_id, fetched.url, policy, from_file=False)


def fetch_article(
    fetcher: Fetcher, url: str, article_id: str | None = None, policy: ExtractionPolicy | None = None
) -> Article:
    """The article of the page at `url`; id from the URL unless given."""
    return page_article(fetcher.get(url), article_id or url_article_id(url), policy)
