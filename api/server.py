"""How `rag serve` runs the app: uvicorn, with limits on the request head that uvicorn lacks.

uvicorn closes an idle keep-alive connection after a response, but a connection that never
finishes its first request line and headers stays open for as long as the client likes, and
with httptools a header may be any size: a few thousand idle sockets, or a header of hundreds of
megabytes, take the service down without a line in the log. The protocol below gives each
request head `header_timeout` seconds and `max_header_bytes` bytes; the body's own limits (size,
pauses) are the app's middleware's.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rag.settings import Settings

log = logging.getLogger("newsrag.api")

_REASONS = {408: "Request Timeout", 431: "Request Header Fields Too Large"}


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head that is too slow (408) or too large (431)."""

    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    # Parser callbacks: the head is timed from its first byte (or the connection's start) to its end.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def on_url(self, url: bytes) -> None:
        if self._counted(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._counted(len(name) + len(value) + 4):
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self._refused:
            self._stop_head_timer()
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    # -- refusals -----------------------------------------------------------------------------

    def _counted(self, size: int) -> bool:
        if self._refused:
            return False
        self._head_bytes += size
        if self._head_bytes > self.max_header_bytes:
            self._refuse(431, f"the request line and headers are larger than {self.max_header_bytes} bytes")
            return False
        return True

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self._refused:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered; the head being timed never started
        self._refuse(408, f"the request line and headers did not arrive within {self.header_timeout:g} seconds")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer with a problem and close: the rest of the head, if any, is never read."""
        self._refused = True
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        log.warning(detail, extra={"fields": {"event": "refused", "status": status, "client": self.client}})
        problem = {"type": "about:blank", "title": _REASONS[status], "status": status, "detail": detail}
        body = json.dumps(problem).encode()
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()

    def _stop_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None


def guarded_protocol(header_timeout: float, max_header_bytes: int) -> type[GuardedHttpProtocol]:
    """The protocol class with these limits (uvicorn builds one instance per connection from a class)."""
    return type(
        "GuardedHttpProtocol",
        (GuardedHttpProtocol,),
        {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes},
    )


def uvicorn_config(app: Any, settings: Settings, host: str, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration `rag serve` runs `app` with."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=guarded_protocol(settings.header_timeout_seconds, settings.max_header_bytes),
        **options,
    )
