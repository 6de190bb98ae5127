"""Metrics: pure functions from one question and one system outcome to numbers, and their means.

Definitions (per question; an aggregate is the mean over the questions where a metric applies):
  * article Hits@k / MRR@10: the retrieved passages, ranked, deduplicated by article (first
    occurrence keeps its place); a hit is an article named in the question's evidence.
  * evidence Hits@k / MRR@10 (questions with evidence sentences): rank of the first retrieved
    passage that contains one of the evidence sentences (whitespace-insensitive).
  * citation precision: share of cited passages that hold evidence (an evidence sentence when
    the question has them, else a passage of an evidence article). Undefined without citations.
  * citation recall: share of the question's evidence items that some cited passage holds.
    Seed questions often list the same fact from two articles, so 1.0 is rarely needed to be right.
  * fact recall: share of the question's facts found case-insensitively in the answer text.
  * answer contains the gold answer: every fact (news-quiz: the `answer`) is in the answer text with case,
    quotation marks and punctuation ignored; a fact "A and B" also counts written "B and A".
  * cites a gold article: some citation is a passage of an evidence article.
  * refusals: an unanswerable question answered "not answerable" is a correct refusal; an
    answerable one is a false refusal (and scores 0 fact recall).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from eval.datasets import Question

KS = (1, 5, 10)
MRR_DEPTH = 10


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrieved or cited passage, as either the library or the HTTP API reports it."""

    article_id: str
    text: str


@dataclass(slots=True)
class Outcome:
    """What a system did with one question."""

    answer: str
    answerable: bool
    citations: list[Passage]
    retrieved: list[Passage]
    latency_ms: float = 0.0
    error: str | None = None


@dataclass(slots=True)
class Score:
    """Every metric of one question; None where it does not apply."""

    id: str
    article_rank: int | None = None
    evidence_rank: int | None = None
    citation_precision: float | None = None
    citation_recall: float | None = None
    fact_recall: float | None = None
    correct: bool | None = None
    contains_answer: bool | None = None
    cites_gold: bool | None = None
    refused: bool = False
    answerable: bool = True
    ranked_articles: bool = False  # the question names evidence articles
    ranked_evidence: bool = False  # the question has evidence sentences
    latency_ms: float = 0.0
    answer: str = ""
    split: str = ""  # "tune", "check" or "untouched" (see eval.harness.tuning_half)
    notes: list[str] = field(default_factory=list)


def squash(text: str) -> str:
    """Lower-case text with runs of whitespace made one space, for containment checks."""
    return " ".join(text.split()).lower()


_PUNCTUATION = re.compile(r"[^\w\s]+")
_QUOTES = re.compile(r"[\"'“”‘’«»`]")


def normalise_answer(text: str) -> str:
    """Lower case, quotation marks and other punctuation made spaces ("Twitter’s" holds "twitter"), whitespace
    collapsed."""
    return " ".join(_PUNCTUATION.sub(" ", _QUOTES.sub(" ", text.lower())).split())


def contains_answer(answer: str, expected: str) -> bool:
    """Whether `answer` states `expected`, case, quotes and punctuation ignored ("A and B" either way round)."""
    text = f" {normalise_answer(answer)} "
    wanted = normalise_answer(expected)
    forms = [wanted]
    if " and " in wanted:
        first, _, second = wanted.partition(" and ")
        forms.append(f"{second} and {first}")
    return any(f" {form} " in text for form in forms if form)


def holds(passage: str, sentence: str) -> bool:
    return squash(sentence) in squash(passage)


def article_ranking(retrieved: Iterable[Passage]) -> list[str]:
    """Article ids in rank order, each kept at its first (best) position."""
    return list(dict.fromkeys(p.article_id for p in retrieved))


def first_rank(flags: Iterable[bool]) -> int | None:
    """1-based position of the first true flag, or None."""
    for rank, flag in enumerate(flags, start=1):
        if flag:
            return rank
    return None


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, depth: int = MRR_DEPTH) -> float:
    return 1.0 / rank if rank is not None and rank <= depth else 0.0


def rank_of_article(question: Question, retrieved: Sequence[Passage]) -> int | None:
    wanted = question.evidence_articles
    return first_rank(a in wanted for a in article_ranking(retrieved))


def rank_of_evidence(question: Question, retrieved: Sequence[Passage]) -> int | None:
    texts = question.evidence_texts
    return first_rank(any(holds(p.text, t) for t in texts) for p in retrieved)


def supports(question: Question, passage: Passage) -> bool:
    """Whether a cited passage holds required evidence (a sentence, or failing those an article)."""
    if question.evidence_texts:
        return any(holds(passage.text, t) for t in question.evidence_texts)
    return passage.article_id in question.evidence_articles


def citation_precision(question: Question, citations: Sequence[Passage]) -> float | None:
    if not citations:
        return None
    return sum(supports(question, c) for c in citations) / len(citations)


def citation_recall(question: Question, citations: Sequence[Passage]) -> float | None:
    if not question.evidence:
        return None
    if not citations:
        return 0.0
    found = 0
    for item in question.evidence:
        if item.text:
            found += any(holds(c.text, item.text) for c in citations)
        else:
            found += any(c.article_id == item.article_id for c in citations)
    return found / len(question.evidence)


def fact_recall(answer: str, facts: Sequence[str]) -> float | None:
    if not facts:
        return None
    text = squash(answer)
    return sum(squash(f) in text for f in facts) / len(facts)


def score(question: Question, outcome: Outcome) -> Score:
    """All per-question metrics of one outcome."""
    s = Score(id=question.id, answerable=question.answerable, latency_ms=outcome.latency_ms, answer=outcome.answer)
    s.refused = not outcome.answerable
    if outcome.error:
        s.notes.append(f"error: {outcome.error}")
    if question.evidence:
        s.ranked_articles = True
        s.article_rank = rank_of_article(question, outcome.retrieved)
    if question.evidence_texts:
        s.ranked_evidence = True
        s.evidence_rank = rank_of_evidence(question, outcome.retrieved)
    if not question.answerable:
        return s
    if outcome.answerable:
        s.citation_precision = citation_precision(question, outcome.citations)
    s.citation_recall = citation_recall(question, outcome.citations)
    s.fact_recall = fact_recall(outcome.answer, question.facts) if outcome.answerable else 0.0
    s.correct = s.fact_recall == 1.0
    if question.facts:
        s.contains_answer = outcome.answerable and all(contains_answer(outcome.answer, f) for f in question.facts)
    if question.evidence:
        wanted = question.evidence_articles
        s.cites_gold = outcome.answerable and any(c.article_id in wanted for c in outcome.citations)
    return s


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def summarise(scores: Sequence[Score], retrieval_only: bool = False) -> dict[str, float | int | None]:
    """Aggregate figures of a run; keys are stable (the JSON result and the report use them)."""
    out: dict[str, float | int | None] = {"questions": len(scores)}
    for level in ("article", "evidence"):
        if level == "article":
            ranks = [s.article_rank for s in scores if s.ranked_articles]
        else:
            ranks = [s.evidence_rank for s in scores if s.ranked_evidence]
        for k in KS:
            out[f"{level}_hits@{k}"] = _mean(hit_at(r, k) for r in ranks)
        out[f"{level}_mrr@10"] = _mean(reciprocal_rank(r) for r in ranks)
    if retrieval_only:
        return out
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    out["citation_precision"] = _mean(s.citation_precision for s in answerable)
    out["citation_recall"] = _mean(s.citation_recall for s in answerable)
    out["fact_recall"] = _mean(s.fact_recall for s in answerable)
    out["answer_accuracy"] = _mean(1.0 if s.correct else 0.0 for s in answerable) if answerable else None
    out["answer_contains"] = _mean(float(s.contains_answer) for s in answerable if s.contains_answer is not None)
    out["cites_gold"] = _mean(float(s.cites_gold) for s in answerable if s.cites_gold is not None)
    out["refusal_accuracy"] = _mean(1.0 if s.refused else 0.0 for s in unanswerable) if unanswerable else None
    out["unanswerable"] = len(unanswerable)
    out["false_refusals"] = sum(s.refused for s in answerable)
    latencies = sorted(s.latency_ms for s in scores)
    out["latency_ms_p50"] = latencies[len(latencies) // 2] if latencies else None
    out["latency_ms_p95"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))] if latencies else None
    return out
