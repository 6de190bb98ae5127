"""Syndicated copies on a real index: another outlet's near-duplicate is kept as a copy, named by citations, and
promoted when the kept article is deleted; an outlet's own near-duplicates and short texts are never folded."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rag.loading import article_from_body
from rag.models import Article
from rag.pipeline import Pipeline, build_pipeline
from rag.syndication import SyndicationPolicy, signature
from tests.conftest import make_settings
from tests.pages import PARAGRAPHS

QUESTION = "By how much did Rotterdam's container volumes drop from a year earlier?"


def story(article_id: str, source: str, title: str, paragraphs: tuple[str, ...] = PARAGRAPHS, day: int = 29) -> Article:
    return article_from_body(
        article_id=article_id,
        title=title,
        body="\n\n".join(paragraphs),
        source=source,
        published_at=date(2024, 10, day),
        url=f"https://{source.lower().replace(' ', '')}.example/{article_id}",
    )


WIRE = story("ht-1", "Harbour Times", "Rotterdam port traffic falls again")
# Another outlet's copy: its own headline and dateline, the wire's paragraphs, one line of its own at the end.
COPY = story(
    "pd-7",
    "Port Daily",
    "Red Sea detours hit Rotterdam volumes",
    ("ROTTERDAM (Wire) -", *PARAGRAPHS, "Port Daily will follow the story."),
    day=30,
)
THIRD = story(
    "sb-2",
    "Shipping Brief",
    "Rotterdam: third quarterly drop",
    (*PARAGRAPHS[:-1], PARAGRAPHS[-1] + " Shares fell."),
    day=31,
)


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return build_pipeline(make_settings(tmp_path))


def test_another_outlets_copy_is_kept_beside_the_story_and_named_by_its_citations(pipeline: Pipeline) -> None:
    assert pipeline.ingest_articles([WIRE]).added == 1
    report = pipeline.ingest_articles([COPY, THIRD])
    assert (report.added, report.folded) == (0, 2)
    records = {r.id: r for r in pipeline.documents()}
    assert (records["pd-7"].copy_of, records["pd-7"].chunk_count) == ("ht-1", 0)
    assert records["ht-1"].copy_of is None and records["ht-1"].chunk_count > 0
    answer = pipeline.ask(QUESTION)
    assert {c.article_id for c in answer.citations} == {"ht-1"}  # the story once, not three times
    copies = answer.citations[0].also_published_by
    assert [(c.article_id, c.source) for c in copies] == [("pd-7", "Port Daily"), ("sb-2", "Shipping Brief")]
    assert copies[0].url == "https://portdaily.example/pd-7" and copies[0].published_at == date(2024, 10, 30)
    assert [c.article_id for c in pipeline.copies("ht-1")] == ["pd-7", "sb-2"]


def test_deleting_the_kept_story_promotes_a_copy(pipeline: Pipeline) -> None:
    pipeline.ingest_articles([WIRE, COPY, THIRD])
    pipeline.delete("ht-1")
    records = {r.id: r for r in pipeline.documents()}
    assert set(records) == {"pd-7", "sb-2"}
    assert records["pd-7"].copy_of is None and records["pd-7"].chunk_count > 0
    assert records["sb-2"].copy_of == "pd-7"
    answer = pipeline.ask(QUESTION)
    assert {c.article_id for c in answer.citations} == {"pd-7"}
    assert [c.article_id for c in answer.citations[0].also_published_by] == ["sb-2"]
    pipeline.delete("pd-7")
    assert [(r.id, r.copy_of) for r in pipeline.documents()] == [("sb-2", None)]
    assert pipeline.ask(QUESTION).citations[0].article_id == "sb-2"


def test_an_outlets_own_near_duplicate_and_other_stories_are_not_folded(pipeline: Pipeline) -> None:
    update = story("ht-2", "Harbour Times", "Rotterdam port traffic falls again (update)")
    other = story("pd-8", "Port Daily", "Hamburg ships more by rail", tuple(p[::-1] for p in PARAGRAPHS))
    report = pipeline.ingest_articles([WIRE, update, other])
    assert (report.added, report.folded) == (3, 0)


def test_short_texts_are_never_compared() -> None:
    policy = SyndicationPolicy()
    assert signature("Markets closed higher on Friday. " * 3, policy) is None
    assert signature(" ".join(PARAGRAPHS), policy) is not None


def test_a_dry_run_counts_the_folds_and_folding_can_be_turned_off(tmp_path: Path) -> None:
    pipeline = build_pipeline(make_settings(tmp_path / "a"))
    pipeline.ingest_articles([WIRE])
    assert pipeline.ingest_articles([COPY], dry_run=True).folded == 1
    assert pipeline.documents()[0].id == "ht-1" and len(pipeline.documents()) == 1
    unfolded = build_pipeline(make_settings(tmp_path / "b", fold_copies=False))
    assert unfolded.ingest_articles([WIRE, COPY]).added == 2


def test_copies_are_found_across_writers_and_after_deletes(tmp_path: Path) -> None:
    """Each indexer keeps its copy finder current with its own writes and rebuilds it when another wrote."""
    settings = make_settings(tmp_path)
    first, second = build_pipeline(settings), build_pipeline(settings)
    first.ingest_articles([WIRE])
    assert second.ingest_articles([COPY]).folded == 1  # another writer: built from the records
    assert first.ingest_articles([THIRD]).folded == 1  # the first writer saw the second's write
    first.delete("ht-1")
    other = story("zz-9", "Zed News", "Rotterdam volumes fall", (*PARAGRAPHS, "Zed News adds nothing."), 31)
    report = first.ingest_articles([other])
    assert report.folded == 1
    assert {r.id: r.copy_of for r in first.documents()}["zz-9"] == "pd-7"  # the promoted copy, not the deleted one


def test_a_writer_follows_anothers_writes_through_the_change_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After its first write, a writer reads only the records the store's change log names, not every record."""
    settings = make_settings(tmp_path)
    first, second = build_pipeline(settings), build_pipeline(settings)
    council = (
        "The council approved 120 new homes on Monday after a long debate about traffic and schools.",
        "Residents welcomed the plan, which adds two parks and a health centre to the district.",
        "Work is due to start next spring and to take three years.",
    )
    first.ingest_articles([story("x-1", "Town Gazette", "Council backs new homes", council)])
    second.ingest_articles([WIRE])
    scans: list[int] = []
    records = first.store.article_records
    monkeypatch.setattr(first.store, "article_records", lambda: scans.append(1) or records())
    assert first.ingest_articles([COPY]).folded == 1  # the second's story, learnt from the log
    assert second.ingest_articles([THIRD]).folded == 1
    first.delete("ht-1")  # promotes the copy
    other = story("zz-9", "Zed News", "Rotterdam volumes fall", (*PARAGRAPHS, "Zed News adds nothing."), 31)
    assert first.ingest_articles([other]).folded == 1  # after its own delete: the promotion, learnt from the log
    assert {r.id: r.copy_of for r in second.documents()}["zz-9"] == "pd-7"
    assert scans == []
