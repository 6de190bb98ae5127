from __future__ import annotations

import pytest

from rag.answering import NO_ANSWER, fits_answer_type, key_terms
from rag.models import Filters
from rag.pipeline import Pipeline

# Questions from eval/questions/seeds.jsonl (written by hand from the seed text) that the default
# pipeline must answer with a citation whose passage holds the expected evidence sentence and
# whose answer states every required fact. The evaluation harness scores all of them.
ANSWERED = [
    "seeds-004",
    "seeds-005",
    "seeds-006",
    "seeds-007",
    "seeds-008",
    "seeds-009",  # who said what
    "seeds-016",
    "seeds-018",
    "seeds-020",
    "seeds-023",  # numbers
    "seeds-033",
    "seeds-034",  # places and dates
    "seeds-044",  # spans two articles
    "seeds-049",
    "seeds-050",
    "seeds-056",  # paraphrases
]
UNANSWERABLE = [
    "seeds-058",
    "seeds-059",
    "seeds-060",
    "seeds-061",
    "seeds-063",
    "seeds-064",
    "seeds-067",  # a dollar value: the sources give trade growth, no amount of money
    "seeds-069",  # a price per barrel: the sources give volumes only
]


@pytest.mark.parametrize("qid", ANSWERED)
def test_answer_cites_the_passage_holding_the_evidence(pipeline: Pipeline, seed_questions: dict, qid: str) -> None:
    question = seed_questions[qid]
    answer = pipeline.ask(question["question"])
    assert answer.answerable, answer.text
    evidence = [e["text"] for e in question["evidence"]]
    assert any(e in c.passage for c in answer.citations for e in evidence), answer.text
    for fact in question["facts"]:
        assert fact.lower() in answer.text.lower(), (fact, answer.text)


@pytest.mark.parametrize("qid", UNANSWERABLE)
def test_refuses_when_no_source_supports_the_answer(pipeline: Pipeline, seed_questions: dict, qid: str) -> None:
    answer = pipeline.ask(seed_questions[qid]["question"])
    assert not answer.answerable
    assert answer.text == NO_ANSWER and answer.citations == []


def test_putin_on_the_12_point_plan_is_quoted_with_citations(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Putin say about China's 12-point plan?")
    assert answer.answerable
    text = answer.text.lower()
    assert "basis" in text
    assert any(phrase in text for phrase in ("not yet ready", "did not appear ready", "no such readiness"))
    cited = " ".join(c.quote for c in answer.citations).lower()
    assert "basis" in cited and "ready" in cited
    assert all("putin" in c.passage.lower() for c in answer.citations)


def test_every_answer_sentence_carries_a_marker_and_every_marker_a_citation(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Xi say about sanctions?")
    assert answer.citations
    for c in answer.citations:
        assert f"{c.quote} [{c.n}]" in answer.text
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_citation_offsets_point_into_the_article_text(pipeline: Pipeline) -> None:
    answer = pipeline.ask("How much gas will the Power of Siberia 2 pipeline deliver?")
    assert answer.citations
    for c in answer.citations:
        article = pipeline.document(c.article_id)
        assert article.text is not None
        assert article.text[c.start : c.end] == c.passage
        assert article.text[c.quote_start : c.quote_end] == c.quote
        assert c.start <= c.quote_start < c.quote_end <= c.end


def test_a_filter_that_excludes_everything_gives_no_answer(pipeline: Pipeline) -> None:
    answer = pipeline.ask("What did Putin say about gas?", filters=Filters(sources=("nowhere.txt",)))
    assert not answer.answerable and answer.citations == []


def test_key_terms_are_the_names_and_numbers_a_question_hinges_on() -> None:
    assert key_terms("What did Putin say about the 2008 Beijing Olympics?") == {"putin", "2008", "beij", "olymp"}
    assert key_terms("Which anniversary did the China-Russia concert mark?") == {"china", "russia"}


def test_quantity_and_money_questions_need_a_sentence_that_states_one() -> None:
    assert fits_answer_type("How many delegations were invited?", "Some 160 delegations were invited.")
    assert fits_answer_type("How long did Putin speak?", "He spoke for about eight minutes.")
    assert not fits_answer_type("How many ships took part in the drills?", "Russia and China held naval drills.")
    assert not fits_answer_type("What price per barrel did China pay?", "China bought 2 million barrels a day.")
    assert fits_answer_type("What price per barrel did China pay?", "China paid $60 a barrel.")
    assert fits_answer_type("What did Putin say about the plan?", "Putin praised the plan.")
