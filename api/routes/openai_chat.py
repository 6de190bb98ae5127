"""POST /v1/chat/completions, GET /v1/models and /v1/models/{id}: the service as one OpenAI-compatible "model".

Chat front-ends (Open WebUI, LibreChat, `llm`, LangChain, the openai client) send the whole conversation; the
last user message is made standalone from the last turns (rag.conversation / the LLM) and answered by
`Pipeline.stream`, the same path as POST /query. The assistant message is the answer with its [n] markers,
then a Markdown list of its sources grouped by article; OpenAI's `annotations` (url_citation) let a client show
source chips, and `citations` and `rewritten_question` ride along for clients that read them. A front-end's
housekeeping prompts (a title, tags, follow-ups) are answered without retrieval (`api.chat_tasks`).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse

from api.chat_schemas import (
    MODEL_ID,
    Annotation,
    AssistantMessage,
    ChatCompletion,
    ChatRequest,
    Choice,
    ModelCard,
    ModelList,
    UrlCitation,
    Usage,
)
from api.chat_tasks import answer_task
from api.deps import ReadAccess, ReadyPipelineDep
from api.schemas import CitationOut, Problem, ResolvedDates
from rag.models import Answer, AnswerEvent, Citation
from rag.settings import Settings

log = logging.getLogger("newsrag.api")

router = APIRouter(prefix="/v1", tags=["openai-compatible chat"], dependencies=[ReadAccess])

_STARTED = int(time.time())
_ERRORS = {400: {"model": Problem}, 404: {"model": Problem}, 503: {"model": Problem}}
_STREAM = {"content": {"text/event-stream": {}}, "description": "A chat.completion, or with `stream: true` SSE chunks."}
_OPENING = "“\"‘'«"
_CLOSING = "”\"’'»"


class ModelNotFound(HTTPException):
    """A model name this service does not answer to: OpenAI's 404 `model_not_found`."""

    code = "model_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(404, f"The model `{name[:200]}` does not exist or you do not have access to it.")


def _quoted(quote: str) -> str:
    """A cited sentence in quotation marks, unless it opens or closes with its own (no doubled marks)."""
    text = " ".join(quote.split())
    return text if text[:1] in _OPENING or text[-1:] in _CLOSING else f"“{text}”"


def sources_markdown(answer: Answer) -> str:
    """The sources list appended to the assistant message: each cited article once (its title, linked when it
    has a URL, with its source and date), then the sentences quoted from it with their [n], then the other
    outlets that ran the same story."""
    if not answer.citations:
        return ""
    articles: dict[str, list[Citation]] = {}
    for c in answer.citations:
        articles.setdefault(c.article_id, []).append(c)
    lines = []
    for cited in articles.values():
        first = cited[0]
        where = ", ".join(p for p in (first.source, first.published_at.isoformat() if first.published_at else "") if p)
        title = f"[{first.title}]({first.url})" if first.url else f"**{first.title}**"
        lines.append(f"- {title} ({where})" if where else f"- {title}")
        lines.extend(f"  - [{c.n}] {_quoted(c.quote)}" for c in cited)
        if first.also_published_by:
            outlets = ", ".join(f"[{x.source}]({x.url})" if x.url else x.source for x in first.also_published_by)
            lines.append(f"  - also published by {outlets}")
    return "\n\n**Sources**\n\n" + "\n".join(lines)


def url_citations(answer: Answer, base_url: str, offset: int = 0) -> list[Annotation]:
    """OpenAI's url_citation annotations: for each [n] of the answer text, the span from the end of the marker
    before it to the end of this one (the sentence it cites), shifted by `offset` (where the answer text starts
    in the message). The url is the article's own, or this service's GET /documents/{id}."""
    by_n = {c.n: c for c in answer.citations}
    out: list[Annotation] = []
    start = 0
    text = answer.text
    position = 0
    while (at := text.find("[", position)) >= 0:
        end = text.find("]", at)
        if end < 0:
            break
        label = text[at + 1 : end]
        position = end + 1
        if not label.isdigit() or int(label) not in by_n:
            continue
        c = by_n[int(label)]
        url = c.url or f"{base_url.rstrip('/')}/documents/{c.article_id}"
        span = UrlCitation(url=url, title=c.title, start_index=offset + start, end_index=offset + end + 1)
        out.append(Annotation(url_citation=span))
        start = end + 1 if text[end + 1 : end + 2] != " " else end + 2
    return out


def _usage(pipeline: Any, body: ChatRequest, content: str) -> Usage:
    """Tokens as the embedder's tokenizer counts them (no LLM sees them by default)."""
    prompt = sum(pipeline.embedder.count_tokens([m.text for m in body.messages if m.text]) or [0])
    completion = sum(pipeline.embedder.count_tokens([content]) or [0])
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


@router.get("/models", response_model=ModelList)
def models() -> ModelList:
    """The one model this service is: retrieval-augmented answers over the indexed news articles."""
    return ModelList(data=[ModelCard(id=MODEL_ID, created=_STARTED)])


@router.get("/models/{model_id}", response_model=ModelCard, responses={404: {"model": Problem}})
def model(request: Request, model_id: str = Path(..., max_length=200)) -> ModelCard:
    """`newsrag` (or one of its aliases, RAG_CHAT_MODEL_ALIASES); any other name is OpenAI's 404 model_not_found."""
    _check_model(model_id, request.app.state.settings)
    return ModelCard(id=model_id, created=_STARTED)


def _check_model(name: str, settings: Settings) -> None:
    if name not in settings.model_names:
        raise ModelNotFound(name)


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


def _chunks(
    events: Iterator[AnswerEvent], body: ChatRequest, completion_id: str, created: int, base_url: str, pipeline: Any
) -> Iterator[str]:
    """The answer as chat.completion.chunk lines, ending with `data: [DONE]`; the last chunk carries the
    annotations, citations and (when asked) usage."""
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
            offset = 0
            if "".join(streamed) != event.text:
                # An LLM answer that failed verification was replaced by the extractive one: say so
                # rather than leave the streamed text standing (chunks cannot be taken back).
                separator = "\n\n---\n\n"
                offset = len("".join(streamed)) + len(separator)
                tail = f"{separator}{event.text}{tail}"
            if tail:
                yield _chunk(completion_id, created, model, {"content": tail})
            notes = [a.model_dump() for a in url_citations(event, base_url, offset)]
            citations = [CitationOut.of(c).model_dump(mode="json") for c in event.citations]
            yield _chunk(
                completion_id, created, model, {"annotations": notes}, finish_reason="stop", citations=citations,
                rewritten_question=event.question, answerable=event.answerable, mode=event.mode,
                resolved_dates=ResolvedDates.of(event.timeframe).model_dump(mode="json") if event.timeframe else None,
            )  # fmt: skip
            if body.stream_options and body.stream_options.include_usage:
                usage = _usage(pipeline, body, "".join(streamed) + tail).model_dump()
                line = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
                yield f"data: {json.dumps({**line, 'choices': [], 'usage': usage})}\n\n"
    except Exception as exc:  # the status line is sent: report in-band, as OpenAI's streams do
        log.exception("chat stream failed", exc_info=exc)
        error = {"message": str(exc), "type": "server_error", "param": None, "code": "server_error"}
        yield f"data: {json.dumps({'error': error})}\n\n"
    yield "data: [DONE]\n\n"


def _task_reply(body: ChatRequest, key: str, completion_id: str, created: int) -> JSONResponse | StreamingResponse:
    """A front-end's housekeeping prompt answered without retrieval (`api.chat_tasks`)."""
    try:
        content = answer_task(key, body.question)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if body.stream:
        lines = [
            _chunk(completion_id, created, body.model, {"role": "assistant", "content": ""}),
            _chunk(completion_id, created, body.model, {"content": content}),
            _chunk(completion_id, created, body.model, {}, finish_reason="stop"),
            "data: [DONE]\n\n",
        ]
        return StreamingResponse(iter(lines), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[Choice(message=AssistantMessage(content=content, citations=[]))],
        rewritten_question="",
        answerable=False,
        mode="task",
    )
    return JSONResponse(completion.model_dump(mode="json"))


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={200: _STREAM, **_ERRORS},  # type: ignore[dict-item]
)
def chat_completions(
    body: ChatRequest, request: Request, pipeline: ReadyPipelineDep
) -> JSONResponse | StreamingResponse:
    """Answer the conversation's last user message from the indexed articles, OpenAI style.

    Follow-ups are rewritten into a standalone question first (`rewritten_question`), from the last
    RAG_CHAT_HISTORY_TURNS turns. With `stream: true` the reply is `chat.completion.chunk` Server-Sent Events
    ending with `data: [DONE]`; the last chunk carries `annotations` and `citations`. Invalid input gets a 400
    (OpenAI's `error` member beside the problem fields) before anything is sent; an unknown model a 404.
    """
    settings = request.app.state.settings
    _check_model(body.model, settings)
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    if (task := body.task) is not None:
        return _task_reply(body, task, completion_id, created)
    question = pipeline.standalone(body.question, body.history(settings.chat_history_turns))
    events = pipeline.stream(question, as_of=body.as_of)
    base_url = str(request.base_url)
    if body.stream:
        return StreamingResponse(
            _chunks(events, body, completion_id, created, base_url, pipeline),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = next(event for event in events if isinstance(event, Answer))
    content = answer.text + sources_markdown(answer)
    message = AssistantMessage(
        content=content,
        annotations=url_citations(answer, base_url),
        citations=[CitationOut.of(c) for c in answer.citations],
    )
    completion = ChatCompletion(
        id=completion_id,
        created=created,
        model=body.model,
        choices=[Choice(message=message)],
        usage=_usage(pipeline, body, content),
        rewritten_question=answer.question,
        resolved_dates=ResolvedDates.of(answer.timeframe) if answer.timeframe else None,
        answerable=answer.answerable,
        mode=answer.mode,
    )
    return JSONResponse(completion.model_dump(mode="json"))
