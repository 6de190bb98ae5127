"""The OpenAPI document: every error response is declared as RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.problems import PROBLEM_JSON
from api.schemas import Problem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What any operation can answer besides its own documented codes.
COMMON_ERRORS = {
    "400": "Malformed request (e.g. a bad Content-Length)",
    "413": "Request body too large",
    "415": "A JSON body sent without Content-Type: application/json",
    "422": "Invalid input; `errors` names each field",
    "500": "Internal error",
    "503": "Index loading or store unavailable",
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for defn in schemas["Problem"].pop("$defs", {}).items():
            schemas.setdefault(*defn)
        for schema_name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(schema_name, None)
        for path_item in spec.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for code, description in COMMON_ERRORS.items():
                    responses.setdefault(code, {"description": description})
                for code, response in responses.items():
                    if code.startswith(("4", "5")):
                        response["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
