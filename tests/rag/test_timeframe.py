"""Time phrases resolved on the day a question is asked (Thursday 23 June 2022)."""

from __future__ import annotations

from datetime import date

import pytest

from rag.timeframe import TimeframePolicy, resolve

AS_OF = date(2022, 6, 23)  # a Thursday


@pytest.mark.parametrize(
    ("question", "start", "end", "published_from"),
    [
        ("What NFL star announced his retirement on Tuesday?", date(2022, 6, 21), date(2022, 6, 22), None),
        ("Which quake struck this week?", date(2022, 6, 16), date(2022, 6, 24), None),
        ("Who resigned yesterday?", date(2022, 6, 22), date(2022, 6, 23), None),
        ("What happened today in Kyiv?", date(2022, 6, 23), date(2022, 6, 24), None),
        ("What did the Fed do last week?", date(2022, 6, 13), date(2022, 6, 20), None),
        ("Which bill passed last month?", date(2022, 5, 1), date(2022, 6, 1), None),
        ("What did Biden say in March?", date(2022, 3, 1), date(2022, 4, 1), None),
        ("What did Biden say in September?", date(2021, 9, 1), date(2021, 10, 1), None),  # the last September
        ("Who won three days ago?", date(2022, 6, 19), date(2022, 6, 22), None),
        ("What rose in the past two weeks?", date(2022, 6, 9), date(2022, 6, 24), None),
        ("Who won the election in 2020?", date(2020, 1, 1), date(2021, 1, 1), date(2020, 1, 1)),
        ("What changed in March 2021?", date(2021, 3, 1), date(2021, 4, 1), date(2021, 3, 1)),
        ("What has the ECB done since June?", date(2022, 6, 1), date(2022, 6, 24), date(2022, 6, 1)),
        ("How many storms since 2019?", date(2019, 1, 1), date(2022, 6, 24), date(2019, 1, 1)),
        ("What was agreed before 2015?", None, date(2014, 12, 31), None),  # later retrospectives count too
        ("Which island nation plunged into chaos in recent days?", date(2022, 6, 16), date(2022, 6, 24), None),
        ("Which team won the 2022 NHL Stanley Cup Finals?", date(2022, 6, 16), date(2022, 6, 24), None),
    ],
)
def test_phrases(question: str, start: date | None, end: date | None, published_from: date | None) -> None:
    frame = resolve(question, AS_OF)
    assert frame is not None
    assert (frame.start, frame.end, frame.published_from) == (start, end, published_from), frame


def test_the_narrowest_phrase_wins_and_a_hard_one_before_any() -> None:
    assert resolve("This week, what did he say on Monday?", AS_OF).phrase == "on Monday"  # type: ignore[union-attr]
    assert resolve("In 2021, what happened last week?", AS_OF).phrase == "In 2021"  # type: ignore[union-attr]


@pytest.mark.parametrize("question", ["Black Friday sales", "New York mayor", "the march on Washington", "May Day"])
def test_words_that_only_look_like_dates_name_no_time(question: str) -> None:
    assert resolve(question, AS_OF).phrase == ""  # type: ignore[union-attr]


def test_without_the_recent_default_a_question_naming_no_time_has_none() -> None:
    assert resolve("Who is the mayor?", AS_OF, TimeframePolicy(default_recent=False)) is None
