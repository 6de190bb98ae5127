"""GET /documents: what is in the index."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ReadyPipelineDep
from api.schemas import DocumentList, DocumentOut, Problem

router = APIRouter(tags=["documents"])


@router.get("/documents", response_model=DocumentList, responses={503: {"model": Problem}})  # type: ignore[arg-type]
def list_documents(pipeline: ReadyPipelineDep) -> DocumentList:
    """The ingested articles with their chunk counts."""
    docs = [DocumentOut.of(r) for r in pipeline.documents()]
    return DocumentList(count=len(docs), documents=docs)
