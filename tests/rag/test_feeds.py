"""Feeds polled into a real index from a news site on loopback: new entries stored, seen ones skipped, a bad
feed or a bad page reported without losing what is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from rag.feeds import FeedLog, FeedWatcher, PollReport, parse_feed
from rag.pipeline import Pipeline, build_pipeline
from tests.conftest import make_settings
from tests.news_server import NewsSite, rotterdam_site
from tests.pages import HAMBURG, atom_feed


@pytest.fixture
def site() -> Iterator[NewsSite]:
    with rotterdam_site() as server:
        yield server


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return build_pipeline(make_settings(tmp_path, fetch_allow_networks="127.0.0.0/8", fetch_timeout_seconds=2.0))


def test_a_feed_is_polled_then_only_its_new_entries_are_fetched(site: NewsSite, pipeline: Pipeline) -> None:
    feed = site.url("/feed.xml")
    first = pipeline.feeds.poll(feed)
    assert (first.entries, first.ingest and first.ingest.added, first.error) == (1, 1, None)
    [record] = pipeline.documents()
    assert (record.title, record.published_at) == ("Rotterdam port traffic falls again", date(2024, 10, 29))
    assert record.url == site.url("/news/rotterdam.html")

    assert pipeline.feeds.poll(feed).not_modified  # conditional GET: 304, nothing fetched
    assert site.not_modified == 1

    site.add_story("hamburg", "Hamburg ships more freight by rail", date(2024, 10, 30), HAMBURG)
    third = pipeline.feeds.poll(feed)
    assert (third.unchanged, third.ingest and third.ingest.added) == (1, 1)
    assert site.hits["/news/rotterdam.html"] == 1  # the entry seen before is not fetched again
    assert len(pipeline.documents()) == 2
    status = pipeline.feeds.log.get(feed)
    assert (status.polls, status.articles_added, status.last_error) == (3, 2, None)


def test_a_changed_entry_replaces_its_article(site: NewsSite, pipeline: Pipeline) -> None:
    feed = site.url("/feed.xml")
    pipeline.feeds.poll(feed)
    url = site.url("/news/rotterdam.html")
    site.pages["/news/rotterdam.html"] = site.pages["/news/rotterdam.html"].replace("4.2 percent", "4.3 percent")
    site.feed_entries[0] = (
        *site.feed_entries[0][:2],
        "Rotterdam port traffic falls again (corrected)",
        date(2024, 10, 29),
    )
    site.feed_version = "corrected"
    report = pipeline.feeds.poll(feed)
    assert report.ingest is not None and report.ingest.updated == 1
    [record] = pipeline.documents()
    assert "4.3 percent" in (pipeline.document(record.id).text or "") and record.url == url


def test_a_page_that_cannot_be_had_falls_back_to_the_entry_or_is_skipped(site: NewsSite, pipeline: Pipeline) -> None:
    site.feed_entries.append(("urn:story:gone", site.url("/news/gone.html"), "A story taken down", date(2024, 10, 30)))
    site.feed_entries.append(("urn:story:pdf", site.url("/report.pdf"), "A report", date(2024, 10, 30)))
    report = pipeline.feeds.poll(site.url("/feed.xml"))
    assert report.ingest is not None and report.ingest.added == 1  # the good page
    reasons = dict(report.skipped)
    assert "answered 404" in reasons[site.url("/news/gone.html")]
    assert "the entry's own text is" in reasons[site.url("/news/gone.html")]
    assert "not an HTML page" in reasons[site.url("/report.pdf")]

    # An Atom entry that carries its story: stored from the feed when the page is gone.
    content = "".join(f"<p>{p}</p>" for p in HAMBURG)
    atom = atom_feed([("urn:wire:1", site.url("/news/wire-gone.html"), "Wire: Hamburg", date(2024, 10, 29), content)])
    poll = pipeline.feeds.read_file(atom.encode(), "wire.atom")
    assert (poll.from_entry, poll.ingest and poll.ingest.added) == (1, 1)
    stored = pipeline.document(poll.ingest.ids[0])
    assert (stored.title, stored.author, stored.published_at) == ("Wire: Hamburg", "Wire staff", date(2024, 10, 29))
    assert stored.text == "\n".join(HAMBURG)


@pytest.mark.parametrize(("path", "error"), [("/garbage.xml", "not an RSS or Atom feed"), ("/gone.xml", "404")])
def test_a_bad_feed_is_an_error_and_nothing_stored_is_lost(
    site: NewsSite, pipeline: Pipeline, path: str, error: str
) -> None:
    pipeline.feeds.poll(site.url("/feed.xml"))
    report = pipeline.feeds.poll(site.url(path))
    assert report.error and error in report.error
    assert len(pipeline.documents()) == 1
    status = pipeline.feeds.log.get(site.url(path))
    assert (status.errors, status.last_error) == (1, report.error)


def test_malformed_xml_keeps_what_it_can_and_says_so() -> None:
    feed = parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><item><link>https://a.example/x</link>', "f")
    assert feed.warning and "malformed feed XML" in feed.warning
    assert [e.link for e in feed.entries] == ["https://a.example/x"]


def test_feed_state_survives_a_restart_and_is_written_whole(site: NewsSite, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, fetch_allow_networks="127.0.0.0/8")
    build_pipeline(settings).feeds.poll(site.url("/feed.xml"))
    path = tmp_path / "feeds.json"
    assert json.loads(path.read_text(encoding="utf-8"))[0]["url"] == site.url("/feed.xml")
    assert not list(tmp_path.glob("*.tmp"))
    again = build_pipeline(settings)
    assert again.feeds.poll(site.url("/feed.xml")).not_modified
    path.write_text("{not json", encoding="utf-8")
    assert FeedLog(path).all() == []  # an unreadable state starts afresh rather than stopping the service


def test_a_watcher_polls_every_feed_each_round(site: NewsSite, pipeline: Pipeline) -> None:
    seen: list[PollReport] = []
    watcher = FeedWatcher(pipeline.feeds, [site.url("/feed.xml"), site.url("/garbage.xml")], 0.05, seen.append)
    watcher.run(rounds=2)
    assert len(seen) == 4
    assert pipeline.feeds.log.get(site.url("/feed.xml")).polls == 2


def test_a_dry_run_stores_nothing_and_remembers_nothing(site: NewsSite, pipeline: Pipeline) -> None:
    report = pipeline.ingest_sources([site.url("/feed.xml"), site.url("/news/rotterdam.html")], dry_run=True)
    assert (report.added, report.chunks) == (2, 0)
    assert pipeline.documents() == []
    assert pipeline.feeds.log.get(site.url("/feed.xml")).seen == {}
