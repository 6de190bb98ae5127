"""POST /query: a question in, a cited answer out."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReadyPipelineDep
from api.schemas import Problem, QueryRequest, QueryResponse

router = APIRouter(tags=["query"])

_ERRORS = {422: {"model": Problem}, 503: {"model": Problem}}


@router.post("/query", response_model=QueryResponse, responses=_ERRORS)  # type: ignore[arg-type]
def query(body: QueryRequest, pipeline: ReadyPipelineDep) -> QueryResponse:
    """Answer a question from the indexed articles; every sentence of the answer carries an [n] citation."""
    answer = pipeline.ask(body.question, top_k=body.top_k, filters=body.filters.to_domain() if body.filters else None)
    return QueryResponse.of(answer, include_retrieved=body.include_retrieved)
