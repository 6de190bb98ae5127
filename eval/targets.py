"""Targets: the systems a question set is run against, each turning a question into an Outcome.

In process (a `Pipeline`), over HTTP (POST /query of a running service) or the plain llama-index
baseline (eval/baseline.py). All of them retrieve the same number of passages, `DEPTH`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from eval.datasets import Question, date_window
from eval.metrics import Outcome, Passage
from rag.errors import RagError
from rag.models import Answer
from rag.pipeline import Pipeline

DEPTH = 10  # passages retrieved per question: enough for Hits@10 and MRR@10


class Target(Protocol):
    """Something that answers (or only retrieves for) one question."""

    name: str
    retrieval_only: bool

    def run(self, question: Question) -> Outcome: ...


def outcome_of(answer: Answer, latency_ms: float) -> Outcome:
    """An Outcome from the library's Answer."""
    return Outcome(
        answer=answer.text,
        answerable=answer.answerable,
        citations=[Passage(c.article_id, c.passage) for c in answer.citations],
        retrieved=[Passage(s.chunk.article_id, s.chunk.text) for s in answer.retrieved],
        latency_ms=latency_ms,
    )


class PipelineTarget:
    """Our pipeline, in process. A dated question is asked `as_of` its date (the service reads "this week" from
    it), unless `as_of` is False (then on today, as a service would). `window_days` / `prefer_days`: a date
    window the harness computes and sends as filters instead (see `date_window`; a comparison)."""

    retrieval_only = False

    def __init__(
        self,
        pipeline: Pipeline,
        name: str = "ours",
        window_days: int | None = None,
        prefer_days: int | None = None,
        as_of: bool = True,
    ) -> None:
        self.pipeline = pipeline
        self.name = name
        self.window_days = window_days
        self.prefer_days = prefer_days
        self.as_of = as_of

    def run(self, question: Question) -> Outcome:
        filters = date_window(question.question_date, self.window_days, self.prefer_days)
        as_of = question.question_date if self.as_of else None
        started = time.perf_counter()
        try:
            answer = self.pipeline.ask(question.question, top_k=DEPTH, filters=filters, as_of=as_of)
        except RagError as exc:
            return Outcome("", False, [], [], (time.perf_counter() - started) * 1000, error=str(exc))
        return outcome_of(answer, (time.perf_counter() - started) * 1000)


class HttpClient(Protocol):
    """The part of httpx.Client (or Starlette's TestClient) the HTTP target uses."""

    def post(self, url: str, *, json: Any) -> Any: ...


class HttpTarget:
    """A running service: POST /query with include_retrieved and `as_of` the question's date (as
    PipelineTarget), or a computed date window as `filters`."""

    retrieval_only = False

    def __init__(
        self,
        client: HttpClient,
        name: str = "ours (http)",
        window_days: int | None = None,
        prefer_days: int | None = None,
        as_of: bool = True,
    ) -> None:
        self.client = client
        self.name = name
        self.window_days = window_days
        self.prefer_days = prefer_days
        self.as_of = as_of

    def run(self, question: Question) -> Outcome:
        body: dict[str, Any] = {"question": question.question, "top_k": DEPTH, "include_retrieved": True}
        if self.as_of and question.question_date:
            body["as_of"] = question.question_date.isoformat()
        filters = date_window(question.question_date, self.window_days, self.prefer_days)
        if filters is not None:
            fields = ("date_from", "date_to", "prefer_from", "prefer_to")
            body["filters"] = {k: getattr(filters, k).isoformat() for k in fields if getattr(filters, k)}
        started = time.perf_counter()
        response = self.client.post("/query", json=body)
        latency = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            return Outcome("", False, [], [], latency, error=f"HTTP {response.status_code}: {response.text[:200]}")
        data = response.json()
        return Outcome(
            answer=data["answer"],
            answerable=data["answerable"],
            citations=[Passage(c["article_id"], c["passage"]) for c in data["citations"]],
            retrieved=[Passage(r["article_id"], r["text"]) for r in data.get("retrieved") or []],
            latency_ms=latency,
        )
