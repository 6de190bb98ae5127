"""ASGI middleware: request ids, access logs with timings, metrics, and the request body's size and pace."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException

from api.logs import REQUEST_ID
from api.metrics import Metrics
from api.problems import PROBLEM_JSON, is_openai, problem_bytes

log = logging.getLogger("newsrag.access")
errors_log = logging.getLogger("newsrag.api")

Scope = dict[str, Any]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_INTERNAL = "internal error: the server failed to handle this request"


class _BodyRefused(HTTPException):
    """A body the middleware stops reading. An HTTPException, so that FastAPI's body parsing passes it on
    as the 4xx it is instead of turning it into a 400 "error parsing the body"."""


class _TooLarge(_BodyRefused):
    """A body read past the limit (a chunked body has no length to refuse up front)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class _TooSlow(_BodyRefused):
    """A client that stops sending its body part-way: without a limit it would hold a connection and a
    request (and, for an upload, its buffered part) for as long as it likes."""

    def __init__(self, seconds: float) -> None:
        super().__init__(408, f"the request body stopped arriving: nothing came for {seconds:g} seconds")


async def _send_problem(send: Callable[..., Any], status: int, detail: str, request_id: str, path: str = "") -> None:
    body = problem_bytes(status, detail, openai=is_openai(path))
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    # A 408's client stopped sending: closing loses nothing. A 413's may still be sending, and closing on unread
    # bytes resets the connection before it reads the answer; `rag serve` bounds that drain (api/server.py).
    if status == 408:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _route_label(scope: Scope) -> str:
    """The metrics and log label of a request: its route's template, so that the label set stays small."""
    route = getattr(scope.get("route"), "path", None)  # FastAPI's routes
    if route:
        return str(route)
    if scope.get("root_path"):  # a mount (the page's files): any path below it is one label
        return str(scope["root_path"])
    if scope.get("endpoint") is not None:  # Starlette's own routes (the docs): fixed paths
        return str(scope["path"])
    return "unmatched"


class RequestContext:
    """Gives every response an X-Request-ID, logs one JSON line per request, counts it, refuses
    bodies over the limit (413) before the app reads them, and gives up on a body that stops
    arriving for `body_timeout` seconds (408)."""

    def __init__(
        self, app: Any, metrics: Metrics, body_limit: Callable[[str], int], body_timeout: float = 30.0
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.body_limit = body_limit
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        context_token = REQUEST_ID.set(request_id)
        started = time.perf_counter()
        status = {"code": 500, "started": False}
        limit = self.body_limit(scope["path"])
        # HEAD is GET without the body, wherever GET is served (FastAPI routes answer only the methods they list).
        head = scope["method"] == "HEAD"
        app_scope = {**scope, "method": "GET"} if head else scope

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        received = 0
        body_done = False

        async def receive_wrapper() -> dict[str, Any]:
            nonlocal received, body_done
            if body_done:  # a streaming response waiting for the client to leave: no time limit
                return await receive()
            try:
                message: dict[str, Any] = await asyncio.wait_for(receive(), self.body_timeout)
            except TimeoutError:
                raise _TooSlow(self.body_timeout) from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
                body_done = not message.get("more_body", False)
            return message

        try:
            declared = headers.get(b"content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                code = 413 if declared.isdigit() else 400
                detail = _TooLarge(limit).detail if code == 413 else "bad Content-Length"
                status["code"] = code
                await _send_problem(send, code, detail, request_id, scope["path"])
            else:
                await self.app(app_scope, receive_wrapper, send_wrapper)
        except _BodyRefused as exc:
            status["code"] = exc.status_code
            if not status["started"]:
                await _send_problem(send, exc.status_code, exc.detail, request_id, scope["path"])
        except Exception:
            # Answered here rather than by Starlette's outermost handler, which would send the 500 without the
            # request id and then re-raise, so that the server resets the connection. A response already
            # under way (a stream) cannot be replaced: the error goes on up and the connection is closed.
            status["code"] = 500
            if status["started"]:
                raise
            errors_log.exception("unhandled error", extra={"fields": {"event": "error", "request_id": request_id}})
            await _send_problem(send, 500, _INTERNAL, request_id, scope["path"])
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(app_scope)
            self.metrics.observe(scope["method"], route, status["code"], elapsed)
            log.info(
                "%s %s %s",
                scope["method"],
                scope["path"],
                status["code"],
                extra={
                    "fields": {
                        "event": "request",
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": route,
                        "status": status["code"],
                        "duration_ms": round(elapsed * 1000, 2),
                    }
                },
            )
            REQUEST_ID.reset(context_token)
