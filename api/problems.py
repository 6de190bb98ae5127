"""The one problem+json (RFC 9457) builder: every error body the service sends, from whichever layer sends it
(exception handlers, the body-limit middleware, the head limits of `rag serve`, an SSE `error` event).

Under /v1 (the OpenAI-compatible API) a problem also carries OpenAI's `error` member, `{message, type, param,
code}`, which clients built on the OpenAI SDK read to say why a request failed, and an invalid request is a
400 there, as OpenAI answers it, not a 422.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from api.schemas import FieldError, Problem

PROBLEM_JSON = "application/problem+json"
# RFC 9110's names where Python's are the older ones.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


# OpenAI's error types and codes by status, as its API answers them: invalid_request_error for every 4xx but a
# rate limit (a wrong key, an unknown model, a bad field alike), server_error for a 5xx.
_OPENAI_TYPES = {429: "requests"}
_OPENAI_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


def title_of(status: int) -> str:
    return _TITLES.get(status) or HTTPStatus(status).phrase


def is_openai(path: str) -> bool:
    """Whether a request path belongs to the OpenAI-compatible API, whose errors speak OpenAI's shape too."""
    return path == "/v1" or path.startswith("/v1/")


def openai_status(status: int) -> int:
    """OpenAI answers an invalid request with 400, where the rest of this service says 422."""
    return 400 if status == 422 else status


def openai_error(
    status: int, detail: str, field_errors: list[FieldError] | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's `error` member: message, type, param (the first field at fault) and code (a string or null)."""
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    param = field_errors[0].field.split(".")[0] if field_errors else None
    return {"message": detail, "type": kind, "param": param, "code": code or _OPENAI_CODES.get(status)}


def problem_body(
    status: int,
    detail: str,
    field_errors: list[FieldError] | None = None,
    openai: bool = False,
    code: str | None = None,
    written: list[str] | None = None,
    removed: list[str] | None = None,
) -> dict[str, Any]:
    """The problem as JSON-ready data: type, title, status, detail and, for an invalid request, the fields at
    fault; for a write that failed part-way, what it had `written` and `removed`; with `openai`, OpenAI's `error`
    member beside them (give the status `openai_status` made)."""
    problem = Problem(
        title=title_of(status), status=status, detail=detail, errors=field_errors, written=written, removed=removed
    )
    body = problem.model_dump(exclude_none=True)
    if openai:
        body["error"] = openai_error(status, detail, field_errors, code)
    return body


def problem_bytes(status: int, detail: str, openai: bool = False) -> bytes:
    """The problem serialised, for the layers below FastAPI that write bytes themselves."""
    return json.dumps(problem_body(status, detail, openai=openai)).encode()
