"""Feeds: RSS 0.9x/1.0/2.0 and Atom, read with feedparser, polled to keep the index fresh.

Each entry with a link becomes an article: its page is fetched and extracted (`rag.fetching.fetch_article`),
and when the page cannot be had (a paywall, a timeout, a 404) the entry's own content stands in for it, if there
is enough of it to be an article. An entry seen before is skipped unless its content changed, and a feed is
polled with conditional GET, so an unchanged feed costs one request. What a poll did, and each feed's last poll
and last error, is kept in a small JSON file beside the index (`FeedLog`), read by /health and /metrics.

A failure never stops a poll: a bad entry is skipped with its reason (and tried again next poll), a bad feed
leaves everything already stored as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

from rag.errors import FetchFailed, InvalidDocument, RagError
from rag.extraction import ExtractionPolicy, fragment_text
from rag.fetching import Fetched, Fetcher, fetch_article, url_article_id
from rag.loading import article_from_body
from rag.models import Article, IngestReport

log = logging.getLogger("newsrag.feeds")

FEED_NAMES = (".xml", ".rss", ".atom")  # local feed files `rag ingest` reads as feeds


@dataclass(frozen=True, slots=True)
class FeedEntry:
    key: str  # the entry's id, else its link
    link: str | None
    title: str
    published_at: date | None
    author: str | None
    content: str  # HTML or text the feed carries for the entry (its content, else its summary)

    @property
    def fingerprint(self) -> str:
        """Changes when the entry's content changes (a correction, an updated story)."""
        parts = (self.link or "", self.title, self.published_at, self.content)
        return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Feed:
    title: str
    entries: tuple[FeedEntry, ...]
    warning: str | None = None  # the XML was malformed but feedparser recovered these entries


def _entry_date(entry: Any) -> date | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if parsed:
            return date(parsed.tm_year, parsed.tm_mon, parsed.tm_mday)
    return None


def parse_feed(raw: bytes, where: str) -> Feed:
    """The entries of an RSS or Atom document; InvalidDocument when it is no feed at all."""
    import feedparser

    parsed = feedparser.parse(raw)
    if not parsed.get("version") and not parsed.entries:
        reason = f" ({parsed.get('bozo_exception')})" if parsed.get("bozo") else ""
        raise InvalidDocument(f"{where}: not an RSS or Atom feed{reason}")
    entries: list[FeedEntry] = []
    for entry in parsed.entries:
        link = entry.get("link") or None
        key = entry.get("id") or link
        if not key:
            continue
        contents = entry.get("content") or []
        content = contents[0].get("value", "") if contents else entry.get("summary", "")
        entries.append(
            FeedEntry(
                key=str(key),
                link=str(link) if link else None,
                title=" ".join(str(entry.get("title", "")).split()),
                published_at=_entry_date(entry),
                author=entry.get("author") or None,
                content=str(content or ""),
            )
        )
    warning = None
    if parsed.get("bozo"):
        warning = f"malformed feed XML ({parsed.get('bozo_exception')}); {len(entries)} entries recovered"
    return Feed(" ".join(str(parsed.feed.get("title", "")).split()), tuple(entries), warning)


def entry_article(entry: FeedEntry, feed_title: str, policy: ExtractionPolicy) -> Article:
    """The article an entry carries itself, for when its page cannot be had."""
    text = fragment_text(entry.content)
    words = len(text.split())
    if words < policy.min_words:
        raise InvalidDocument(f"the entry's own text is {words} words (at least {policy.min_words} make an article)")
    key = entry.link or entry.key
    return article_from_body(
        article_id=url_article_id(key),
        title=entry.title or text.split("\n", 1)[0][:200],
        body=text,
        source=feed_title or "feed",
        published_at=entry.published_at,
        url=entry.link,
        author=entry.author,
        extracted=True,
    )


@dataclass(slots=True)
class FeedStatus:
    """One feed's state: its validators, the entries seen, and what its polls did."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    seen: dict[str, str] = field(default_factory=dict)  # entry key -> fingerprint of what was stored
    last_poll: float | None = None  # unix time
    last_success: float | None = None
    last_error: str | None = None
    polls: int = 0
    errors: int = 0
    articles_added: int = 0
    articles_replaced: int = 0

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("seen", "etag", "last_modified")}


class FeedLog:
    """Feed states, in one JSON file written whole (a temporary file renamed over it: never half-written)."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._feeds: dict[str, FeedStatus] = {}
        if path is not None and path.is_file():
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))
                self._feeds = {row["url"]: FeedStatus(**row) for row in rows}
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("feed state %s unreadable (%s): every feed starts afresh", path, exc)

    def get(self, url: str) -> FeedStatus:
        with self._lock:
            return self._feeds.setdefault(url, FeedStatus(url))

    def all(self) -> list[FeedStatus]:
        with self._lock:
            return list(self._feeds.values())

    def save(self) -> None:
        if self._path is None:
            return
        with self._lock:
            rows = [asdict(s) for s in self._feeds.values()]
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
        os.replace(tmp, self._path)


@dataclass(slots=True)
class PollReport:
    """What one poll of one feed did."""

    feed: str
    not_modified: bool = False
    entries: int = 0
    unchanged: int = 0  # entries seen before with the same content
    from_entry: int = 0  # articles made of the entry's own content (the page could not be had)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)
    ingest: IngestReport | None = None
    error: str | None = None
    warning: str | None = None

    def summary(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if self.not_modified:
            return "not modified since the last poll"
        done = self.ingest or IngestReport()
        parts = [
            f"{self.entries} entries",
            f"{done.added} added",
            f"{done.updated} replaced",
            f"{done.folded} folded",
            f"{self.unchanged} seen before",
            f"{len(self.skipped)} skipped",
        ]
        if self.from_entry:
            parts.append(f"{self.from_entry} from the feed's own text (page unavailable)")
        return ", ".join(parts) + (f" ({self.warning})" if self.warning else "")

    def as_ingest_report(self) -> IngestReport:
        """The poll as an ingest's report: what was stored, and every entry skipped with its reason."""
        report = self.ingest or IngestReport()
        report.unchanged += self.unchanged
        report.skipped = [*report.skipped, *self.skipped]
        if self.error:
            report.skipped.append((self.feed, self.error))
        return report


class Ingest(Protocol):
    def __call__(self, articles: list[Article], *, dry_run: bool = False) -> IngestReport: ...


Progress = Callable[[int, int], None]


class FeedPoller:
    """Polls feeds into the index through `ingest` (the pipeline's)."""

    def __init__(self, fetcher: Fetcher, ingest: Ingest, feed_log: FeedLog, policy: ExtractionPolicy) -> None:
        self._fetcher = fetcher
        self._ingest = ingest
        self.log = feed_log
        self._policy = policy
        self._lock = threading.Lock()  # one poll at a time: two would fetch every new page twice

    def poll(self, url: str, dry_run: bool = False, progress: Progress | None = None) -> PollReport:
        """Poll one feed URL (conditional GET); never raises for what the feed or its pages do."""
        status = self.log.get(url)
        try:
            fetched = self._fetcher.get(url, status.etag, status.last_modified)
        except RagError as exc:
            return self._finish(url, PollReport(url), exc, dry_run)
        return self.take(url, fetched, dry_run, progress)

    def take(self, url: str, fetched: Fetched, dry_run: bool = False, progress: Progress | None = None) -> PollReport:
        """A poll of a feed already fetched."""
        report = PollReport(url)
        if fetched.status == 304:
            report.not_modified = True
            return self._finish(url, report, None, dry_run)
        try:
            if fetched.kind != "feed":
                raise InvalidDocument(f"{url}: a page, not a feed")
            self._take(parse_feed(fetched.body, url), url, report, dry_run, progress)
        except RagError as exc:
            return self._finish(url, report, exc, dry_run)
        return self._finish(url, report, None, dry_run, (fetched.etag, fetched.last_modified))

    def read_file(self, raw: bytes, name: str, dry_run: bool = False, progress: Progress | None = None) -> PollReport:
        """A feed from a local file, its entries taken as a poll takes them (entries seen before skipped)."""
        report = PollReport(name)
        try:
            self._take(parse_feed(raw, name), name, report, dry_run, progress)
        except RagError as exc:
            return self._finish(name, report, exc, dry_run)
        return self._finish(name, report, None, dry_run)

    def _finish(
        self,
        url: str,
        report: PollReport,
        error: RagError | None,
        dry_run: bool,
        validators: tuple[str | None, str | None] | None = None,
    ) -> PollReport:
        if error is not None:
            report.error = str(error)
            log.warning("feed %s: %s", url, error)
        if dry_run:
            return report
        with self._lock:
            status = self.log.get(url)
            status.last_poll, status.polls = time.time(), status.polls + 1
            if error is None:
                status.last_success, status.last_error = time.time(), None
                if validators is not None:
                    status.etag, status.last_modified = validators
            else:
                status.errors += 1
                status.last_error = str(error)
            if report.ingest is not None:
                status.articles_added += report.ingest.added
                status.articles_replaced += report.ingest.updated
        self.log.save()
        return report

    def _take(self, feed: Feed, url: str, report: PollReport, dry_run: bool, progress: Progress | None) -> None:
        status = self.log.get(url)
        report.entries, report.warning = len(feed.entries), feed.warning
        articles: list[Article] = []
        fingerprints: list[tuple[str, str]] = []
        for n, entry in enumerate(feed.entries, 1):
            if status.seen.get(entry.key) == entry.fingerprint:
                report.unchanged += 1
            else:
                try:
                    articles.append(self._article(entry, feed.title, report))
                    fingerprints.append((entry.key, entry.fingerprint))
                except RagError as exc:
                    report.skipped.append((entry.link or entry.key, str(exc)))
            if progress:
                progress(n, len(feed.entries))
        if not articles:
            return
        report.ingest = self._ingest(articles, dry_run=dry_run)
        if not dry_run:
            with self._lock:
                status.seen.update(fingerprints)

    def _article(self, entry: FeedEntry, feed_title: str, report: PollReport) -> Article:
        if entry.link:
            try:
                article = fetch_article(self._fetcher, entry.link, policy=self._policy)
            except (FetchFailed, InvalidDocument) as exc:
                try:
                    fallback = entry_article(entry, feed_title, self._policy)
                except InvalidDocument as own:
                    raise InvalidDocument(f"{exc}; {own}") from exc
                report.from_entry += 1
                return fallback
            return _with_entry_facts(article, entry)
        return entry_article(entry, feed_title, self._policy)


def _with_entry_facts(article: Article, entry: FeedEntry) -> Article:
    """The page's article, with what the page left out and the feed says (its date, its author)."""
    from dataclasses import replace

    if article.published_at is None and entry.published_at is not None:
        article = replace(article, published_at=entry.published_at)
    if article.author is None and entry.author:
        article = replace(article, author=entry.author)
    return article


def is_feed_name(name: str) -> bool:
    return name.lower().endswith(FEED_NAMES)


class FeedWatcher:
    """Polls feeds every `every` seconds, in the caller's thread (`run`, for `rag watch`) or a daemon thread
    (`start`, for `rag serve` with RAG_FEEDS). A poll that fails is logged and the next one comes on time."""

    def __init__(
        self,
        poller: FeedPoller,
        feeds: Sequence[str],
        every: float,
        on_poll: Callable[[PollReport], None] | None = None,
    ) -> None:
        self.poller = poller
        self.feeds = tuple(feeds)
        self.every = every
        self._on_poll = on_poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, rounds: int | None = None) -> None:
        done = 0
        while not self._stop.is_set():
            started = time.monotonic()
            for url in self.feeds:
                if self._stop.is_set():
                    return
                try:
                    report = self.poller.poll(url)
                except Exception:  # a bug in one poll must not end the watch
                    log.exception("feed %s: poll failed", url)
                    continue
                log.info("feed %s: %s", url, report.summary())
                if self._on_poll:
                    self._on_poll(report)
            done += 1
            if rounds is not None and done >= rounds:
                return
            self._stop.wait(max(self.every - (time.monotonic() - started), 0.0))

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="newsrag-feeds", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
