"""One error model: every 4xx/5xx is RFC 9457 problem+json, mapped here by exception class."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas import UNION_TAGS, FieldError, Problem
from rag import errors

log = logging.getLogger("newsrag.api")

PROBLEM_JSON = "application/problem+json"

_STATUS: dict[type[errors.RagError], int] = {
    errors.InvalidQuestion: 422,
    errors.InvalidDocument: 422,
    errors.DocumentNotFound: 404,
    errors.IndexNotReady: 503,
    errors.StoreUnavailable: 503,
    errors.ProviderError: 502,
    errors.ConfigError: 500,
}


def problem(
    status: int, detail: str, field_errors: list[FieldError] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, errors=field_errors)
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if parts and parts[0] in UNION_TAGS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message(err: dict[str, object]) -> str:
    kind = str(err.get("type", ""))
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    msg = str(err.get("msg", "invalid value"))
    return msg.removeprefix("Value error, ")


async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    field_errors = [
        FieldError(
            field="body" if e.get("type") == "json_invalid" else _field_name(tuple(e.get("loc", ()))),
            message=_message(e),
        )
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e.field}: {e.message}" for e in field_errors) or "invalid request"
    return problem(422, detail, field_errors)


async def _rag_error(_: Request, exc: Exception) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
    headers = {"Retry-After": "5"} if status == 503 else None
    return problem(status, str(exc) or exc.__class__.__name__, headers=headers)


async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "internal error: the server failed to handle this request")


def install(app: FastAPI) -> None:
    """Register the handlers once, by class."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(errors.RagError, _rag_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
