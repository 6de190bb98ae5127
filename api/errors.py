"""One error model: every 4xx/5xx is RFC 9457 problem+json, mapped here by exception class."""

from __future__ import annotations

import logging
import re
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from api.problems import PROBLEM_JSON, is_openai, openai_status, problem_body
from api.schemas import UNION_TAGS, FieldError
from rag import errors

log = logging.getLogger("newsrag.api")

_STATUS: dict[type[errors.RagError], int] = {
    errors.InvalidQuestion: 422,
    errors.InvalidDocument: 422,
    errors.DocumentNotFound: 404,
    errors.IndexNotReady: 503,
    errors.InsufficientStorage: 507,  # before StoreUnavailable, its base
    errors.StoreUnavailable: 503,
    errors.ProviderError: 502,
    errors.FetchFailed: 502,  # the page's server, not the caller: worth a retry later
    errors.ConfigError: 500,
}


def problem(
    request: Request,
    status: int,
    detail: str,
    field_errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
    written: list[str] | None = None,
    removed: list[str] | None = None,
) -> JSONResponse:
    """The problem response; under /v1 in OpenAI's shape too (`api.problems`)."""
    openai = is_openai(request.url.path)
    if openai:
        status = openai_status(status)
    body = problem_body(status, detail, field_errors, openai=openai, code=code, written=written, removed=removed)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# pydantic names the member of a union that failed ("constrained-str", "list[function-after[...]]"):
# its own words, not a field a person sent.
_UNION_MEMBER = re.compile(r"^(constrained-\w+|function-\w+\[.*\]|\w+\[.*\]|str|int|float|bool|none)$")
_FIELD_FIRST = re.compile(r"^([\w.]+): (.+)$", re.DOTALL)


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    if parts and parts[0] in UNION_TAGS:
        parts = parts[1:]
    return ".".join(p for p in parts if not _UNION_MEMBER.match(p)) or "body"


def _field_error(err: dict[str, object]) -> FieldError:
    if err.get("type") == "json_invalid":
        return FieldError(field="body", message=_message(err))
    field, message = _field_name(tuple(err.get("loc", ()))), _message(err)  # type: ignore[arg-type]
    if field == "body" and (named := _FIELD_FIRST.match(message)):  # a model check that names its field
        field, message = named.group(1), named.group(2)
    return FieldError(field=field, message=message)


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


_NOT_AN_OBJECT = {"model_attributes_type", "dict_type", "model_type", "union_tag_invalid"}


def _not_json(request: Request, exc: RequestValidationError) -> bool:
    """A JSON body that arrived as something else (curl -d sends a form): nothing to validate field by field."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or media == "multipart/form-data":
        return False
    return any(tuple(e.get("loc", ())) == ("body",) and e.get("type") in _NOT_AN_OBJECT for e in exc.errors())


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    if _not_json(request, exc):
        media = request.headers.get("content-type") or "none"
        return problem(request, 415, f"send the body as JSON with Content-Type: application/json (got {media[:100]})")
    field_errors = list({(f.field, f.message): f for f in map(_field_error, exc.errors())}.values())
    detail = "; ".join(f"{e.field}: {e.message}" for e in field_errors) or "invalid request"
    return problem(request, 422, detail, field_errors)


async def _rag_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for cls, code in _STATUS.items() if isinstance(exc, cls)), 500)
    headers = {"Retry-After": "5"} if status == 503 else None
    written = list(getattr(exc, "written", ())) or None
    removed = list(getattr(exc, "removed", ())) or None
    return problem(
        request, status, str(exc) or exc.__class__.__name__, headers=headers, written=written, removed=removed
    )


def _served(request: Request, **changes: str) -> bool:
    """Whether some route serves this request with its path or method changed."""
    scope = {**request.scope, **changes}
    return any(route.matches(scope)[0] == Match.FULL for route in request.app.routes)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names only the first route that
    matched the path, so GET /documents/{id} spoke for POST /documents/upload."""
    methods = {m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if _served(request, method=m)}
    if "GET" in methods:
        methods.add("HEAD")  # answered by the middleware
    return sorted(methods)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = getattr(exc, "headers", None)
    if exc.status_code == 400 and detail == "There was an error parsing the body":  # FastAPI's words
        detail = (
            "the request body could not be read as JSON: it is not UTF-8 text, it is nested too deeply, "
            "or it holds a number too long to read"
        )
    path = request.url.path
    if exc.status_code == 404 and path.endswith("/") and path != "/" and _served(request, path=path.rstrip("/")):
        detail = f"nothing is served at {path[:200]}; drop the trailing slash: {path.rstrip('/')[:200]}"
    if exc.status_code == 408:  # the body stopped arriving while the app read it (api/middleware.py's _TooSlow)
        headers = {**(headers or {}), "Connection": "close"}
    if exc.status_code == 405 and (allowed := _allowed_methods(request)):
        detail = f"{request.method} is not served here; use {', '.join(allowed)}"
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return problem(request, exc.status_code, detail, headers=headers, code=getattr(exc, "code", None))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(request, 500, "internal error: the server failed to handle this request")


def install(app: FastAPI) -> None:
    """Register the handlers once, by class."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(errors.RagError, _rag_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)
