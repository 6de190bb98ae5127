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
)
from rag.errors import InvalidDocument
from rag.loading import article_from_body, decode_upload, jsonl_rows, split_articles
from rag.models import Article

router = APIRouter(tags=["documents"])

_READ_ERRORS = {401: {"model": Problem}, 403: {"model": Problem}, 503: {"model": Problem}}
_WRITE_ERRORS = {**_READ_ERRORS, 413: {"model": Problem}, 422: {"model": Problem}, 429: {"model": Problem}}
_UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\.(txt|jsonl)$")

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
    return DocumentDetail.of_record(pipeline.document(article_id))


@router.post("/documents", response_model=IngestResult, responses=_WRITE_ERRORS, dependencies=[WriteAccess])  # type: ignore[arg-type]
def add_documents(body: DocumentsIn, request: Request, pipeline: ReadyPipelineDep) -> IngestResult:
    """Add one article or a batch; posting an existing id with changed content replaces it."""
    items = body.articles if isinstance(body, ArticleBatch) else [body]
    settings = request.app.state.settings
    if len(items) > settings.max_batch_articles:
        raise InvalidDocument(f"articles: at most {settings.max_batch_articles} articles per request")
    articles = []
    for item in items:
        _within_limit(item.id, item.body, settings.max_article_chars, "body")
        articles.append(article_from_body(item.id, item.title, item.body, item.source, item.published_at, item.url))
    report = pipeline.ingest_articles(articles)
    return IngestResult.of(report, [a.id for a in articles])


@router.post("/documents/upload", response_model=IngestResult, responses=_WRITE_ERRORS, dependencies=[WriteAccess])  # type: ignore[arg-type]
async def upload_documents(
    request: Request, pipeline: ReadyPipelineDep, file: Annotated[UploadFile, File(description="A .txt or .jsonl file")]
) -> IngestResult:
    """Upload a plain-text file (one or more articles) or a JSONL corpus. Re-uploading a file
    with the same name replaces its articles and removes those it no longer holds."""
    if len((await request.form()).getlist("file")) > 1:
        raise InvalidDocument("file: send one file per upload")
    name = PurePath(file.filename or "").name
    if not _UPLOAD_NAME.match(name):
        raise InvalidDocument("file: the name must be letters, digits, . _ - and end in .txt or .jsonl")
    limit = request.app.state.settings.max_upload_bytes
    raw = await file.read(limit + 1)
    if len(raw) > limit:
        raise HTTPException(413, f"file: larger than the {limit}-byte upload limit")
    articles = await run_in_threadpool(_upload_articles, raw, name, request.app.state.settings.max_article_chars)
    report = await run_in_threadpool(pipeline.ingest_articles, articles, {name})
    return IngestResult.of(report, [a.id for a in articles])


def _upload_articles(raw: bytes, name: str, max_chars: int) -> list[Article]:
    text = decode_upload(raw)
    if name.endswith(".jsonl"):
        articles = _jsonl_articles(text, name, max_chars)
    else:
        # Ids are `<file stem>-<n>`, valid ids since the name matched _UPLOAD_NAME.
        articles = split_articles(text, file_id=PurePath(name).stem, source=name, source_file=name)
        for article in articles:
            _within_limit(article.id, article.text, max_chars, "file")
    if not articles:
        raise InvalidDocument("file: no article text found")
    return articles


def _within_limit(article_id: str, body: str, max_chars: int, where: str) -> None:
    """The size every write path holds an article to (RAG_MAX_ARTICLE_CHARS)."""
    if len(body) > max_chars:
        raise InvalidDocument(f"{where}: article {article_id!r} is longer than {max_chars} characters")


def _jsonl_articles(text: str, name: str, max_chars: int) -> list[Article]:
    """A JSONL upload's articles, each line held to the rules of POST /documents (errors name the line)."""
    articles: list[Article] = []
    lines: dict[str, int] = {}
    for lineno, row in jsonl_rows(text, name):
        where = ("file", f"line {lineno}")
        try:
            item = JsonlArticleIn.model_validate(row)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": (*where, *e["loc"])} for e in exc.errors()]) from exc
        _within_limit(item.id, item.body, max_chars, f"file line {lineno}: body")
        if item.id in lines:
            raise InvalidDocument(f"file: article id {item.id!r} is on lines {lines[item.id]} and {lineno}")
        lines[item.id] = lineno
        try:
            article = article_from_body(
                item.id, item.title, item.body, item.source or name, item.published_at, item.url, source_file=name
            )
        except InvalidDocument as exc:
            raise InvalidDocument(f"file line {lineno}: {exc}") from exc
        articles.append(article)
    return articles


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
