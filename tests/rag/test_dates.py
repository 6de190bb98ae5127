"""Date restrictions (a hard range) and preferences (a soft range) on dated articles."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from rag.models import Article, Filters, Span
from rag.pipeline import Pipeline, build_pipeline
from tests.conftest import make_settings

STORIES = {
    "budget-jan": (
        date(2022, 1, 10),
        "City council approves harbour budget",
        "The city council approved the harbour budget on Monday after a long debate. "
        "The harbour budget covers new cranes and a wider quay.",
    ),
    "budget-mar": (
        date(2022, 3, 3),
        "Council approves more harbour spending",
        "The city council approved more harbour spending on Thursday. "
        "The money pays for dredging the channel and repairing the pier.",
    ),
    "weather-mar": (
        date(2022, 3, 4),
        "Storm closes schools",
        "A storm closed schools across the region on Friday. Forecasters expect more rain next week.",
    ),
}


def article(article_id: str) -> Article:
    published, title, body = STORIES[article_id]
    text = f"{title}\n\n{body}"
    return Article(
        id=article_id,
        title=title,
        text=text,
        body=(Span(len(title) + 2, len(text)),),
        source="test",
        source_end=len(text),
        published_at=published,
    )


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    pipeline = build_pipeline(make_settings(Path(tmp_path_factory.mktemp("dated")), ingest_on_start=False))
    pipeline.ingest_articles([article(a) for a in STORIES])
    return pipeline


QUESTION = "What did the city council approve for the harbour budget?"


def ranked(pipeline: Pipeline, filters: Filters | None) -> list[str]:
    return [h.chunk.article_id for h in pipeline.retriever.retrieve(QUESTION, 10, filters).hits]


def test_without_dates_the_closest_wording_ranks_first(dated: Pipeline) -> None:
    assert ranked(dated, None)[0] == "budget-jan"


def test_a_hard_range_keeps_only_articles_published_in_it(dated: Pipeline) -> None:
    found = ranked(dated, Filters(date_from=date(2022, 3, 1), date_to=date(2022, 3, 8)))
    assert found and "budget-jan" not in found
    assert set(found) <= {"budget-mar", "weather-mar"}


def test_a_preferred_range_ranks_its_articles_higher_and_keeps_the_rest(dated: Pipeline) -> None:
    found = ranked(dated, Filters(prefer_from=date(2022, 3, 1), prefer_to=date(2022, 3, 8)))
    assert found[0] == "budget-mar"
    assert "budget-jan" in found  # still found, only ranked lower


def test_the_preferred_range_is_narrowed_by_the_hard_one() -> None:
    both = Filters(date_from=date(2022, 3, 2), date_to=date(2022, 3, 31), prefer_from=date(2022, 2, 1))
    assert both.preferred == Filters(date_from=date(2022, 3, 2), date_to=date(2022, 3, 31))
    assert Filters(prefer_to=date(2022, 3, 1)).preferred == Filters(date_to=date(2022, 3, 1))
    assert Filters(date_from=date(2022, 3, 1)).preferred is None
    assert Filters(prefer_from=date(2022, 3, 1)).empty


def test_the_preferred_range_is_searched_on_its_own_so_its_articles_are_found(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With one candidate per retriever, only the preferred range's own search can find the March story."""
    narrow = build_pipeline(make_settings(Path(tmp_path_factory.mktemp("narrow")), candidates=1))
    narrow.ingest_articles([article(a) for a in STORIES])
    assert ranked(narrow, None) == ["budget-jan"]
    found = ranked(narrow, Filters(prefer_from=date(2022, 3, 1), prefer_to=date(2022, 3, 8)))
    assert set(found) == {"budget-mar", "budget-jan"}


def first_passage(pipeline: Pipeline, question: str, as_of: date) -> tuple[str, object]:
    """The article of the best-ranked passage, and the timeframe the question resolved to."""
    answer = pipeline.ask(question, as_of=as_of)
    return answer.retrieved[0].chunk.article_id, answer.timeframe


def test_a_relative_phrase_is_read_on_the_day_the_question_is_asked(dated: Pipeline) -> None:
    question = "What did the city council approve for the harbour this week?"
    first, frame = first_passage(dated, question, date(2022, 3, 5))
    assert first == "budget-mar"
    assert frame is not None and (frame.phrase, frame.hard) == ("this week", False)
    assert (frame.start, frame.end) == (date(2022, 2, 26), date(2022, 3, 6))
    assert first_passage(dated, question, date(2022, 1, 12))[0] == "budget-jan"  # the same words, asked in January


def test_an_explicit_year_rules_out_what_was_published_before_it_and_the_callers_range_wins(dated: Pipeline) -> None:
    answer = dated.ask("What did the city council approve in 2023?", as_of=date(2024, 6, 1))
    assert answer.timeframe is not None and answer.timeframe.published_from == date(2023, 1, 1)
    assert not answer.answerable and not answer.citations  # nothing was published in 2023 or later
    looking_back = dated.ask("What did the city council approve in 2021?", as_of=date(2022, 6, 1))
    assert looking_back.answerable  # reported in 2022: kept (no upper bound is read from a question)
    given = Filters(date_from=date(2022, 1, 1), date_to=date(2022, 1, 31))
    kept = dated.ask("What did the city council approve in 2023?", filters=given, as_of=date(2024, 6, 1))
    assert {c.article_id for c in kept.citations} == {"budget-jan"}


def test_a_question_naming_no_time_prefers_recent_news_softly(dated: Pipeline) -> None:
    first, frame = first_passage(dated, QUESTION, date(2022, 3, 6))
    assert first == "budget-mar"
    assert frame is not None and frame.phrase == "" and not frame.hard
    assert first_passage(dated, QUESTION, date(2030, 1, 1))[0] == "budget-jan"  # nothing recent: the best wording wins
