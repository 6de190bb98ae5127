"""The one problem+json (RFC 9457) builder: every error body the service sends, from whichever layer sends it
(exception handlers, the body-limit middleware, the head limits of `rag serve`, an SSE `error` event)."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from api.schemas import FieldError, Problem

PROBLEM_JSON = "application/problem+json"
# RFC 9110's names where Python's are the older ones.
_TITLES = {413: "Content Too Large", 422: "Unprocessable Content"}


def title_of(status: int) -> str:
    return _TITLES.get(status) or HTTPStatus(status).phrase


def problem_body(status: int, detail: str, field_errors: list[FieldError] | None = None) -> dict[str, Any]:
    """The problem as JSON-ready data: type, title, status, detail and, for a 422, the fields at fault."""
    problem = Problem(title=title_of(status), status=status, detail=detail, errors=field_errors)
    return problem.model_dump(exclude_none=True)


def problem_bytes(status: int, detail: str) -> bytes:
    """The problem serialised, for the layers below FastAPI that write bytes themselves."""
    return json.dumps(problem_body(status, detail)).encode()
