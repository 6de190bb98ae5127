from __future__ import annotations

import pytest

from eval.datasets import Evidence, Question
from eval.metrics import (
    Outcome,
    Passage,
    article_ranking,
    citation_precision,
    citation_recall,
    fact_recall,
    reciprocal_rank,
    score,
    summarise,
)

EVIDENCE = "Putin said the plan could serve as a basis for peace."
QUESTION = Question(
    id="q1",
    question="What did Putin say about the plan?",
    answerable=True,
    facts=("basis", "peace"),
    evidence=(Evidence("a1", EVIDENCE), Evidence("a2", "The West was not ready.")),
)
UNANSWERABLE = Question(id="q2", question="Who won the 1966 World Cup?", answerable=False)
WRAPPED = EVIDENCE.replace(" ", "\n", 1)  # line breaks inside a passage do not hide the sentence
HOLDING = Passage("a1", f"Intro sentence.  {WRAPPED} More.")
OTHER = Passage("a3", "Something unrelated about gas pipelines.")


def outcome(answer: str, citations: list[Passage], retrieved: list[Passage], answerable: bool = True) -> Outcome:
    return Outcome(answer=answer, answerable=answerable, citations=citations, retrieved=retrieved, latency_ms=5.0)


def test_a_perfect_result_scores_one_everywhere() -> None:
    s = score(QUESTION, outcome(f"{EVIDENCE} [1]", [HOLDING], [HOLDING, OTHER]))
    assert (s.article_rank, s.evidence_rank) == (1, 1)
    assert s.citation_precision == 1.0 and s.fact_recall == 1.0 and s.correct
    assert s.citation_recall == 0.5  # one of the two evidence items is cited
    figures = summarise([s])
    assert figures["article_hits@1"] == figures["evidence_mrr@10"] == 1.0
    assert figures["false_refusals"] == 0 and figures["refusal_accuracy"] is None


def test_a_retrieval_miss_ranks_nothing_and_scores_zero() -> None:
    s = score(QUESTION, outcome("Gas flows. [1]", [OTHER], [OTHER] * 3))
    assert s.article_rank is None and s.evidence_rank is None
    figures = summarise([s])
    assert figures["article_hits@10"] == 0.0 and figures["evidence_mrr@10"] == 0.0
    assert s.fact_recall == 0.0 and not s.correct


def test_a_wrong_citation_lowers_precision_but_not_recall_of_the_right_one() -> None:
    assert citation_precision(QUESTION, [HOLDING, OTHER]) == 0.5
    assert citation_recall(QUESTION, [HOLDING, OTHER]) == 0.5
    assert citation_precision(QUESTION, []) is None
    assert citation_recall(QUESTION, []) == 0.0


def test_a_false_refusal_counts_against_answerable_questions_only() -> None:
    refused = score(QUESTION, outcome("The sources do not answer this question.", [], [HOLDING], answerable=False))
    assert refused.refused and refused.fact_recall == 0.0 and refused.citation_precision is None
    right = score(UNANSWERABLE, outcome("The sources do not answer this question.", [], [OTHER], answerable=False))
    wrong = score(UNANSWERABLE, outcome("England. [1]", [OTHER], [OTHER]))
    figures = summarise([refused, right, wrong])
    assert figures["false_refusals"] == 1
    assert figures["refusal_accuracy"] == 0.5
    assert figures["unanswerable"] == 2


def test_a_duplicate_article_keeps_its_first_place_in_the_article_ranking() -> None:
    retrieved = [Passage("a3", "x"), Passage("a3", "y"), Passage("a3", "z"), Passage("a1", EVIDENCE)]
    assert article_ranking(retrieved) == ["a3", "a1"]
    s = score(QUESTION, outcome("", [], retrieved, answerable=False))
    assert s.article_rank == 2 and s.evidence_rank == 4
    assert reciprocal_rank(s.article_rank) == 0.5


def test_facts_match_case_insensitively_and_questions_without_facts_have_no_recall() -> None:
    assert fact_recall("It could be a BASIS.", ["basis", "peace"]) == 0.5
    assert fact_recall("anything", []) is None


def test_news_quiz_questions_count_a_cited_evidence_article_as_support() -> None:
    quiz = Question(id="n1", question="Where?", answerable=True, facts=("Idaho",), evidence=(Evidence("a1"),))
    s = score(quiz, outcome("Men were arrested in Coeur d'Alene, idaho. [1]", [Passage("a1", "...")], [OTHER, HOLDING]))
    assert s.correct and s.citation_precision == 1.0 and s.article_rank == 2 and s.evidence_rank is None
    assert summarise([s])["evidence_hits@1"] is None


@pytest.mark.parametrize("rank, expected", [(1, 1.0), (4, 0.25), (10, 0.1), (11, 0.0), (None, 0.0)])
def test_reciprocal_rank_stops_at_ten(rank: int | None, expected: float) -> None:
    assert reciprocal_rank(rank) == expected


def test_an_answer_contains_the_gold_answer_whatever_its_case_quotes_and_punctuation() -> None:
    from eval.metrics import contains_answer

    assert contains_answer("The pandemic is over, Biden said. [1]", "“The pandemic is over.”")
    assert contains_answer("Twitter’s outage left thousands offline.", "Twitter")
    assert contains_answer("The BA.5 subvariant spread.", "BA.5")
    assert contains_answer("Mustard and ketchup ran short.", "ketchup and mustard")  # "A and B" either way
    assert not contains_answer("It happened in 2012.", "12")  # whole words only
    assert not contains_answer("Chicken nugget tests began.", "Chicken nuggets")


def test_answer_level_metrics_of_a_news_quiz_question() -> None:
    quiz = Question(id="nq", question="Which state?", answerable=True, facts=("Kansas",), evidence=(Evidence("gold"),))
    cited = score(quiz, Outcome("Voters in Kansas said no. [1]", True, [Passage("gold", "…")], []))
    assert cited.contains_answer and cited.cites_gold
    other = score(quiz, Outcome("Voters in Kansas said no. [1]", True, [Passage("digest", "…")], []))
    assert other.contains_answer and not other.cites_gold
    refused = score(quiz, Outcome("The sources do not answer this question.", False, [], []))
    assert refused.contains_answer is False and refused.cites_gold is False
    figures = summarise([cited, other, refused])
    assert figures["answer_contains"] == pytest.approx(2 / 3) and figures["cites_gold"] == pytest.approx(1 / 3)
