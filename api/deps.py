"""Dependencies: the pipeline built at start-up and the key checks, handed to routes via app.state.

They are `async def` because none of them blocks: FastAPI runs a plain `def` dependency in its thread
pool, and the hand-offs to and from it cost more than the checks themselves.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from rag.errors import IndexNotReady
from rag.pipeline import Pipeline


async def get_pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline = request.app.state.pipeline
    return pipeline


async def get_ready_pipeline(request: Request) -> Pipeline:
    """The pipeline, once the start-up ingestion has finished."""
    state = request.app.state
    if not state.ready.is_set():
        raise IndexNotReady(state.startup_error or "the index is still loading; try again shortly")
    pipeline: Pipeline = state.pipeline
    return pipeline


def require_read(request: Request) -> None:
    """On a worker thread, not the event loop: with a shared rate limit it asks Redis."""
    request.app.state.guard.check(request, write=False)


def require_write(request: Request) -> None:
    """On a worker thread, not the event loop: with a shared rate limit it asks Redis."""
    request.app.state.guard.check(request, write=True)


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
ReadyPipelineDep = Annotated[Pipeline, Depends(get_ready_pipeline)]
ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
