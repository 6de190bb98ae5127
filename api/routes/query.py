"""POST /query and POST /query/stream: a question in, a cited answer out (whole, or as Server-Sent Events)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import ReadAccess, ReadyPipelineDep
from api.problems import problem_body
from api.schemas import Problem, QueryRequest, QueryResponse
from rag.models import Answer, AnswerEvent

log = logging.getLogger("newsrag.api")

router = APIRouter(tags=["query"])

_ERRORS = {
    401: {"model": Problem},
    403: {"model": Problem},
    422: {"model": Problem},
    429: {"model": Problem},
    503: {"model": Problem},
}


@router.post("/query", response_model=QueryResponse, responses=_ERRORS, dependencies=[ReadAccess])  # type: ignore[arg-type]
def query(body: QueryRequest, pipeline: ReadyPipelineDep) -> QueryResponse:
    """Answer a question from the indexed articles; every sentence of the answer carries an [n] citation."""
    question = pipeline.standalone(body.question, [t.to_domain() for t in body.history])
    filters = body.filters.to_domain() if body.filters else None
    answer = pipeline.ask(question, top_k=body.top_k, filters=filters, as_of=body.as_of)
    return QueryResponse.of(answer, body.include_retrieved, asked=body.question if body.history else None)


def sse(event: str, data: object) -> str:
    """One Server-Sent Event; the data is JSON, so newlines in the text cannot break the framing."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(events: Iterator[AnswerEvent], include_retrieved: bool, asked: str | None) -> Iterator[str]:
    try:
        for event in events:
            if isinstance(event, Answer):
                yield sse("done", QueryResponse.of(event, include_retrieved, asked).model_dump(mode="json"))
            else:
                yield sse("token", {"text": event})
    except Exception as exc:  # the status line is sent: report in-band, in the same shape as every error
        log.exception("answer stream failed", exc_info=exc)
        yield sse("error", problem_body(500, str(exc)))


_STREAM = {200: {"content": {"text/event-stream": {}}, "description": "`token` events, then `done` (or `error`)."}}


@router.post(
    "/query/stream",
    response_class=StreamingResponse,
    responses={**_STREAM, **_ERRORS},  # type: ignore[dict-item]
    dependencies=[ReadAccess],
)
def query_stream(body: QueryRequest, pipeline: ReadyPipelineDep) -> StreamingResponse:
    """The same answer as POST /query, as Server-Sent Events for chat front-ends.

    `token` events carry `{"text": ...}` pieces as they are produced; the final `done` event carries the
    full /query response (citations, flags, warnings, mode), which replaces the streamed text. Invalid
    input still gets a 422 problem before the stream starts; a failure after it started is an `error` event.
    """
    question = pipeline.standalone(body.question, [t.to_domain() for t in body.history])
    filters = body.filters.to_domain() if body.filters else None
    events = pipeline.stream(question, top_k=body.top_k, filters=filters, as_of=body.as_of)
    return StreamingResponse(
        _events(events, body.include_retrieved, body.question if body.history else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
