"""/documents: list, read, add, upload, replace and delete articles."""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Path, Request, Response, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import ReadAccess, ReadyPipelineDep, WriteAccess
from api.schemas import (
    ARTICLE_ID_PATTERN,
    ArticleBatch,
    DocumentDetail,
    DocumentList,
    DocumentOut,
    DocumentsIn,
    IngestResult,
    JsonlArticleIn,
    Problem,
    UrlIn,
)
from rag.errors import InvalidDocument
from rag.models import ArticleFields

router = APIRouter(tags=["documents"])

_READ_ERRORS = {401: {"model": Problem}, 403: {"model": Problem}, 503: {"model": Problem}}
_WRITE_ERRORS = {
    **_READ_ERRORS,
    413: {"model": Problem},
    422: {"model": Problem},
    429: {"model": Problem},
    507: {"model": Problem},
}
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(txt|jsonl|html?|html?\.gz)$", re.IGNORECASE)

ArticleId = Annotated[str, Path(pattern=ARTICLE_ID_PATTERN, description="An article id from GET /documents.")]


@router.get("/documents", response_model=DocumentList, responses=_READ_ERRORS, dependencies=[ReadAccess])  # type: ignore[arg-type]
def list_documents(pipeline: ReadyPipelineDep) -> DocumentList:
    """The ingested articles with their chunk counts."""
    docs = [DocumentOut.of(r) for r in pipeline.documents()]
    return DocumentList(count=len(docs), documents=docs)


@router.get(
    "/documents/{article_id}",
    response_model=DocumentDetail,
    responses={**_READ_ERRORS, 404: {"model": Problem}},  # type: ignore[dict-item]
    dependencies=[ReadAccess],
)
def get_document(article_id: ArticleId, pipeline: ReadyPipelineDep) -> DocumentDetail:
    """One article with its full text (citation offsets index into `text`)."""
    return DocumentDetail.of_record(pipeline.document(article_id), pipeline.copies(article_id))


@router.post("/documents", response_model=IngestResult, responses=_WRITE_ERRORS, dependencies=[WriteAccess])  # type: ignore[arg-type]
def add_documents(body: DocumentsIn, request: Request, pipeline: ReadyPipelineDep) -> IngestResult:
    """Add one article or a batch; posting an existing id with changed content replaces it."""
    items = body.articles if isinstance(body, ArticleBatch) else [body]
    settings = request.app.state.settings
    if len(items) > settings.max_batch_articles:
        raise InvalidDocument(f"articles: at most {settings.max_batch_articles} articles per request")
    fields = [ArticleFields(i.id, i.title, i.body, i.source, i.published_at, i.url) for i in items]
    return IngestResult.of(pipeline.add(fields, settings.max_article_chars))


@router.post("/documents/upload", response_model=IngestResult, responses=_WRITE_ERRORS, dependencies=[WriteAccess])  # type: ignore[arg-type]
async def upload_documents(
    request: Request,
    pipeline: ReadyPipelineDep,
    file: Annotated[UploadFile, File(description="A .txt, .jsonl or .html file")],
) -> IngestResult:
    """Upload a plain-text file (one or more articles), a JSONL corpus, or an article page (.html, .htm,
    .html.gz: its article is extracted, and a page with none is refused). Re-uploading a file with the same name
    replaces its articles and removes those it no longer holds."""
    if len((await request.form()).getlist("file")) > 1:
        raise InvalidDocument("file: send one file per upload")
    name = PurePath(file.filename or "").name
    if not _UPLOAD_NAME.match(name):
        raise InvalidDocument(
            "file: the name must be letters, digits, . _ - and end in .txt, .jsonl, .html, .htm, .html.gz or .htm.gz"
        )
    limit = request.app.state.settings.max_upload_bytes
    raw = await file.read(limit + 1)
    if len(raw) > limit:
        raise HTTPException(413, f"file: larger than the {limit}-byte upload limit")
    max_chars = request.app.state.settings.max_article_chars
    report = await run_in_threadpool(pipeline.upload, raw, name, max_chars, _schema_row)
    return IngestResult.of(report)


@router.post(
    "/documents/url",
    response_model=IngestResult,
    responses={**_WRITE_ERRORS, 502: {"model": Problem}},  # type: ignore[dict-item]
    dependencies=[WriteAccess],
)
def add_url(body: UrlIn, pipeline: ReadyPipelineDep) -> IngestResult:
    """Fetch a URL and store what it holds: an article page becomes one article (its id made from the URL
    unless given); an RSS or Atom feed has its new entries stored. Private, loopback and link-local addresses
    are refused unless RAG_FETCH_ALLOW_PRIVATE=true; a page that cannot be fetched is a 502 that says why."""
    return IngestResult.of(pipeline.ingest_url(body.url, body.id))


def _schema_row(lineno: int, row: dict[str, object]) -> ArticleFields:
    """A JSONL upload's line held to the rules of POST /documents; a refusal is a 422 naming the line."""
    try:
        item = JsonlArticleIn.model_validate(row)
    except ValidationError as exc:
        where = ("file", f"line {lineno}")
        raise RequestValidationError([{**e, "loc": (*where, *e["loc"])} for e in exc.errors()]) from exc
    return ArticleFields(item.id, item.title, item.body, item.source, item.published_at, item.url)


@router.delete(
    "/documents/{article_id}",
    status_code=204,
    responses={**_WRITE_ERRORS, 404: {"model": Problem}},  # type: ignore[dict-item]
    dependencies=[WriteAccess],
)
def delete_document(article_id: ArticleId, pipeline: ReadyPipelineDep) -> Response:
    """Remove an article and all its chunks."""
    pipeline.delete(article_id)
    return Response(status_code=204)
