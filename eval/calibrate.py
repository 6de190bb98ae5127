"""Calibrate the answerer's scores: `python -m eval.calibrate` fits and prints the numbers of `AnswerPolicy`.

For each score the answerer may rank by (the cross-encoder's logit, and the cheap score used with
RAG_RERANKER=none) it fits P(the best-ranked sentence answers | its score) by logistic regression on the
tune halves of the seed and news-quiz questions, then picks `refuse_below` on the same halves: the
probability, from a coarse grid, that refuses the most unanswerable questions net of answerable ones
refused (ties: the lower one). The check halves and the untouched seed questions are scored with the
chosen numbers and printed beside, never used to choose.

A best sentence "answers" when it (with the sentence leaning on it) states one of the question's facts
or is one of its evidence sentences. The numbers printed go into `AnswerPolicy` by hand, with the date.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.datasets import Question, date_window, load_questions, news_quiz
from eval.harness import tuning_half
from eval.metrics import contains_answer, holds
from eval.suite import EvalConfig, open_index
from rag.answering import continuation
from rag.citations import quote_text
from rag.pipeline import Pipeline
from rag.reranking import SentenceRanker
from rag.settings import Settings

GRID = tuple(round(0.05 * i, 2) for i in range(0, 20))


@dataclass(frozen=True, slots=True)
class Observation:
    """The best-ranked sentence of one question: its score, and whether it answers."""

    question: str
    split: str  # tune / check / untouched
    answerable: bool
    score: float | None  # None: nothing to rank
    answers: bool


def observe(pipeline: Pipeline, ranker: SentenceRanker, questions: Sequence[Question], split: str) -> list[Observation]:
    out = []
    for pos, q in enumerate(questions):
        filters = date_window(q.question_date, None, 7)
        retrieval = pipeline.retriever.retrieve(q.question, max(10, ranker.policy.passages), filters)
        ranking = ranker.rank(retrieval.question, retrieval.question_vector, retrieval.hits, retrieval.snapshot)
        half = tuning_half(pos) if split == "halves" else split
        if not ranking.candidates:
            out.append(Observation(q.id, half, q.answerable, None, False))
            continue
        best = ranking.candidates[0]
        follower = continuation(best.hit.chunk, best.sentence)
        said = best.text if follower is None else f"{best.text} {quote_text(best.hit.chunk, follower)}"
        answers = q.answerable and (
            any(contains_answer(said, f) for f in q.facts) or any(holds(said, e) for e in q.evidence_texts)
        )
        out.append(Observation(q.id, half, q.answerable, best.score, answers))
    return out


def fit(scores: np.ndarray, labels: np.ndarray, l2: float = 1e-3) -> tuple[float, float]:
    """Slope and intercept of a one-feature logistic regression (Newton's method)."""
    x = np.stack([scores, np.ones_like(scores)], axis=1)
    w = np.zeros(2)
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - labels) + l2 * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + l2 * np.eye(2)
        w -= np.linalg.solve(hess, grad)
    return float(w[0]), float(w[1])


def decisions(obs: Sequence[Observation], slope: float, intercept: float, threshold: float) -> dict[str, int]:
    out = {"refused": 0, "unanswerable": 0, "false_refusals": 0, "answered_right": 0, "answerable": 0}
    for o in obs:
        p = 0.0 if o.score is None else 1 / (1 + math.exp(-(slope * o.score + intercept)))
        refuse = o.score is None or p < threshold
        if o.answerable:
            out["answerable"] += 1
            out["false_refusals"] += refuse
            out["answered_right"] += (not refuse) and o.answers
        else:
            out["unanswerable"] += 1
            out["refused"] += refuse
    return out


def calibrate(name: str, obs: list[Observation]) -> None:
    tune = [o for o in obs if o.split == "tune" and o.score is not None]
    scores = np.array([o.score for o in tune], dtype=float)
    labels = np.array([float(o.answers) for o in tune])
    slope, intercept = fit(scores, labels)

    def net(threshold: float) -> int:
        d = decisions([o for o in obs if o.split == "tune"], slope, intercept, threshold)
        return d["refused"] - d["false_refusals"]

    threshold = max(GRID, key=lambda t: (net(t), -t))
    print(f"\n{name}: slope {slope:.3f}, intercept {intercept:.3f}, refuse_below {threshold:.2f}")
    print(f"  tune: {len(tune)} questions ranked, {int(labels.sum())} with an answering best sentence")
    for split in ("tune", "check", "untouched"):
        part = [o for o in obs if o.split == split]
        if part:
            d = decisions(part, slope, intercept, threshold)
            print(
                f"  {split:9s} refused {d['refused']}/{d['unanswerable']} unanswerable, "
                f"{d['false_refusals']}/{d['answerable']} answerable; best sentence answers "
                f"{d['answered_right']}/{d['answerable']}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--news-quiz", type=Path, default=Path("../shared/corpora/news-quiz"), metavar="DIR")
    parser.add_argument("--data-dir", type=Path, default=Path("eval/.cache"))
    args = parser.parse_args(argv)
    settings = Settings()
    quiz = news_quiz(args.news_quiz)
    seeds = open_index(EvalConfig(Path(), data_dir=args.data_dir), settings, [settings.seeds_dir], "title", None)
    quiz_index = open_index(EvalConfig(Path(), data_dir=args.data_dir), settings, [quiz.corpus], "title", None)
    seed_questions = load_questions(Path("eval/questions/seeds.jsonl"))
    untouched = load_questions(Path("eval/questions/seeds-untouched.jsonl"))
    quiz_questions = load_questions(quiz.questions)
    for label, ranker in (
        ("cross-encoder", seeds.ranker),
        ("cheap score (RAG_RERANKER=none)", SentenceRanker(seeds.ranker.policy)),
    ):
        quiz_ranker = ranker if ranker.cross_encoder is None else quiz_index.ranker
        if ranker.cross_encoder is None:
            quiz_ranker = SentenceRanker(quiz_index.ranker.policy)
        obs = (
            observe(seeds, ranker, seed_questions, "halves")
            + observe(seeds, ranker, untouched, "untouched")
            + observe(quiz_index, quiz_ranker, quiz_questions, "halves")
        )
        calibrate(label, obs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
