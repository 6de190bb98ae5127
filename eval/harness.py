"""The harness: run a question set against targets, score every answer, collect one result.

A result is plain JSON-able data (`RunResult.as_dict`), so the report can be rebuilt from the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from eval.datasets import Question
from eval.metrics import Score, score, summarise
from eval.targets import Target

Progress = Callable[[int, int, str], None]


@dataclass(slots=True)
class RunResult:
    """One target's scores on one question set, and their aggregates (whole set and two halves)."""

    name: str
    retrieval_only: bool
    summary: dict[str, float | int | None]
    scores: list[Score]
    halves: dict[str, dict[str, float | int | None]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "retrieval_only": self.retrieval_only,
            "summary": self.summary,
            "halves": self.halves,
            "scores": [asdict(s) for s in self.scores],
        }


def tuning_half(position: int) -> str:
    """Which half a question belongs to: "tune" (even positions, 0-based) or "check" (odd), by file order.

    Settings are tuned on the first half and confirmed on the second, so a gain that only fits
    the questions it was tuned on shows up as a gap between the halves.
    """
    return "tune" if position % 2 == 0 else "check"


def run_target(
    target: Target,
    questions: Sequence[Question],
    progress: Progress | None = None,
    untouched: Sequence[Question] = (),
) -> RunResult:
    """Ask every question (in file order, so runs are comparable) and score the outcomes.

    `untouched`: questions no setting was chosen on, asked after the others and summarised on their own
    (they are not part of the run's summary or its halves)."""
    scores: list[Score] = []
    total = len(questions) + len(untouched)
    for i, question in enumerate([*questions, *untouched], start=1):
        scored = score(question, target.run(question))
        scored.split = tuning_half(i - 1) if i <= len(questions) else "untouched"
        scores.append(scored)
        if progress:
            progress(i, total, target.name)
    main = scores[: len(questions)]
    halves: dict[str, dict[str, float | int | None]] = {}
    for half in ("tune", "check", "untouched"):
        part = [s for s in scores if s.split == half]
        if part:
            halves[half] = summarise(part, retrieval_only=target.retrieval_only)
    return RunResult(target.name, target.retrieval_only, summarise(main, target.retrieval_only), scores, halves)
