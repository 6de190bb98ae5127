"""POST /v1/chat/completions and GET /v1/models: the service as one OpenAI-compatible "model".

Chat front-ends (Open WebUI, LibreChat, the openai client) send the whole conversation; the last
user message is made standalone (rag.conversation / the LLM) and answered by `Pipeline.stream`, the
same path as POST /query. The assistant message is the answer with its [n] markers followed by a
Markdown list of sources; `citations` and `rewritten_question` ride along for clients that read them.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse

from api.chat_schemas import MODEL_ID, AssistantMessage, ChatCompletion, ChatRequest, Choice, ModelCard, ModelList
from api.deps import ReadAccess, ReadyPipelineDep
from api.schemas import CitationOut, Problem
from rag.models import Answer, AnswerEvent

log = logging.getLogger("newsrag.api")

router = APIRouter(prefix="/v1", tags=["openai-compatible chat"], dependencies=[ReadAccess])

_STARTED = int(time.time())
_ERRORS = {422: {"model": Problem}, 503: {"model": Problem}}
_STREAM = {"content": {"text/event-stream": {}}, "description": "A chat.completion, or with `stream: true` SSE chunks."}


def sources_markdown(answer: Answer) -> str:
    """The sources list appended to the assistant message: one line per [n], with the quoted sentence."""
    if not answer.citations:
        return ""
    lines = []
    for c in answer.citations:
        where = ", ".join(part for part in (c.source, c.published_at.isoformat() if c.published_at else "") if part)
        title = f"[{c.title}]({c.url})" if c.url else c.title
        lines.append(f"[{c.n}] {title} ({where}): “{' '.join(c.quote.split())}”")
    return "\n\n**Sources**\n\n" + "\n".join(f"- {line}" for line in lines)


@router.get("/models", response_model=ModelList)
def models() -> ModelList:
    """The one model this service is: retrieval-augmented answers over the indexed news articles."""
    return ModelList(data=[ModelCard(id=MODEL_ID, created=_STARTED)])


def _chunk(completion_id: str, created: int, model: str, delta: dict[str, Any], **extra: Any) -> str:
    body = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": extra.pop("finish_reason", None)}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def _chunks(events: Iterator[AnswerEvent], body: ChatRequest, completion_id: str, created: int) -> Iterator[str]:
    """The answer as chat.completion.chunk lines, ending with `data: [DONE]`."""
    model = body.model
    streamed: list[str] = []
    try:
        yield _chunk(completion_id, created, model, {"role": "assistant", "content": ""})
        for event in events:
            if not isinstance(event, Answer):
                streamed.append(event)
                yield _chunk(completion_id, created, model, {"content": event})
                continue
            tail = sources_markdown(event)
            if "".join(streamed) != event.text:
                # An LLM answer that failed verification was replaced by the extractive one: say so
                # rather than leave the streamed text standing (chunks cannot be taken back).
                tail = f"\n\n---\n\n{event.text}{tail}"
            if tail:
                yield _chunk(completion_id, created, model, {"content": tail})
            citations = [CitationOut.of(c).model_dump(mode="json") for c in event.citations]
            yield _chunk(
                completion_id, created, model, {}, finish_reason="stop", citations=citations,
                rewritten_question=event.question, answerable=event.answerable, mode=event.mode,
            )  # fmt: skip
            if body.stream_options and body.stream_options.include_usage:
                usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
                line = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
                yield f"data: {json.dumps({**line, 'choices': [], 'usage': usage})}\n\n"
    except Exception as exc:  # the status line is sent: report in-band, as OpenAI's streams do
        log.exception("chat stream failed", exc_info=exc)
        yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'server_error', 'code': 500}})}\n\n"
    yield "data: [DONE]\n\n"


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: _STREAM, **_ERRORS},  # type: ignore[dict-item]
)
def chat_completions(body: ChatRequest, pipeline: ReadyPipelineDep) -> JSONResponse | StreamingResponse:
    """Answer the conversation's last user message from the indexed articles, OpenAI style.

    Follow-ups are rewritten into a standalone question first (`rewritten_question`). With
    `stream: true` the reply is `chat.completion.chunk` Server-Sent Events ending with `data: [DONE]`;
    the last chunk carries `citations`. Invalid input gets a 422 problem before anything is sent.
    """
    question = pipeline.standalone(body.question, body.history)
    events = pipeline.stream(question)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if body.stream:
        return StreamingResponse(
            _chunks(events, body, completion_id, created),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = next(event for event in events if isinstance(event, Answer))
    message = AssistantMessage(
        content=answer.text + sources_markdown(answer), citations=[CitationOut.of(c) for c in answer.citations]
    )
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[Choice(message=message)],
        rewritten_question=answer.question,
        answerable=answer.answerable,
        mode=answer.mode,
    )
    return JSONResponse(completion.model_dump(mode="json"))
