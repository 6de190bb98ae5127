"""GET /health: ready only once the index is loaded and the store answers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.metrics import CONTENT_TYPE
from api.schemas import Health
from rag.errors import RagError

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(request: Request) -> JSONResponse:
    state = request.app.state
    if not state.ready.is_set():
        status = "unavailable" if state.startup_error else "loading"
        body = Health(status=status, detail=state.startup_error or "ingesting the seed corpus")
        return JSONResponse(body.model_dump(), status_code=503)
    try:
        size = state.pipeline.health()
    except RagError as exc:
        return JSONResponse(Health(status="unavailable", detail=str(exc)).model_dump(), status_code=503)
    body = Health(status="ready", articles=size.articles, chunks=size.chunks)
    return JSONResponse(body.model_dump(), status_code=200)


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics: request counts and latency histograms by route, index size."""
    size = request.app.state.pipeline.index_size()
    articles, chunks = (size.articles, size.chunks) if size else (None, None)
    return Response(request.app.state.metrics.render(articles, chunks), media_type=CONTENT_TYPE)
