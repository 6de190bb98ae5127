"""GET /health: ready only once the index is loaded and the store answers."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.metrics import CONTENT_TYPE
from api.schemas import FeedHealth, Health, IngestProgress
from rag.errors import RagError

router = APIRouter(tags=["health"])


def _dump(body: Health) -> dict[str, object]:
    """The body; `progress` and `feeds` only where there are some (a body without is as it always was)."""
    empty = {name for name in ("progress", "feeds") if getattr(body, name) is None}
    return body.model_dump(mode="json", exclude=empty or None)


def _feeds(request: Request) -> list[FeedHealth]:
    """The configured feeds' states (a feed not polled yet shows no poll)."""
    settings, pipeline = request.app.state.settings, request.app.state.pipeline
    return [FeedHealth.of(pipeline.feeds.log.get(url)) for url in settings.feed_urls]


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    if not state.ready.is_set():
        if state.startup_error:
            body = Health(status="unavailable", detail=state.startup_error)
        elif state.progress is not None:
            done, total = state.progress
            detail = f"ingesting the seed corpus: {done} of {total} articles"
            body = Health(status="loading", detail=detail, progress=IngestProgress(done=done, total=total))
        else:
            body = Health(status="loading", detail="ingesting the seed corpus")
        return JSONResponse(_dump(body), status_code=503)
    try:
        # On threads of its own (`probes`): when queries hold every worker thread, waiting on a hung store, a
        # load balancer's probe still gets its answer. /metrics asks nothing of the store: it runs on the loop.
        size = await anyio.to_thread.run_sync(state.pipeline.health, limiter=state.probes)
    except RagError as exc:
        return JSONResponse(_dump(Health(status="unavailable", detail=str(exc))), status_code=503)
    feeds = _feeds(request)
    body = Health(
        status="ready", detail=size.writes_refused, articles=size.articles, chunks=size.chunks, feeds=feeds or None
    )
    return JSONResponse(_dump(body), status_code=200)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
async def metrics(request: Request) -> Response:
    """Prometheus metrics: request counts and latency histograms by route, index size, each feed's polls."""
    size = request.app.state.pipeline.index_size()
    articles, chunks = (size.articles, size.chunks) if size else (None, None)
    feeds = [request.app.state.pipeline.feeds.log.get(url) for url in request.app.state.settings.feed_urls]
    return Response(request.app.state.metrics.render(articles, chunks, feeds), media_type=CONTENT_TYPE)
