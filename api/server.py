"""How `rag serve` runs the app: uvicorn, with limits on the request head that uvicorn lacks.

uvicorn closes an idle keep-alive connection after a response, but a connection that never
finishes its first request line and headers stays open for as long as the client likes, and
with httptools a header may be any size: a few thousand idle sockets, or a header of hundreds of
megabytes, take the service down without a line in the log. The protocol below gives each
request head `header_timeout` seconds and `max_header_bytes` bytes (plus at most one socket read),
and a body still arriving after its response as long as a head; the body's own limits (size,
pauses) are the app's middleware's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api.problems import PROBLEM_JSON, problem_bytes, title_of
from rag.settings import Settings

log = logging.getLogger("newsrag.api")


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head that is too slow (408) or too large (431), and
    closing a connection whose request body still trickles in after the response."""

    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._refused = False
        self._stray = False  # the head timer was started by bytes that began no request
        self._in_head = False
        self._fresh_head = False  # the head began in the read now being handled
        self._head_bytes = 0  # header bytes httptools reported
        self._head_raw = 0  # raw bytes read since the head began
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._start_head(fresh=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        self._stop_drain_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._refused or self.transport.is_closing():
            return
        if self._in_head:
            # httptools holds an unfinished header in its own buffer, out of sight of on_header: count the raw
            # bytes too, except those of the read the head began in (they may end the request before it).
            if self._fresh_head:
                self._fresh_head = False
            else:
                self._head_raw += len(data)
                self._check_head_size(self._head_raw)
        elif self._between_requests() and self._head_timer is None and self._drain_timer is None:
            # Bytes after a response that begin no request (a stray CRLF, a body finished late) stopped uvicorn's
            # keep-alive timer: the connection gets as long as a head to begin one, then closes.
            self._restart_head_timer()
            self._stray = True

    # Parser callbacks: a head runs from its first byte (or the connection's start) to its end.

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head(fresh=True)

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._head_bytes += len(url)
            self._check_head_size(self._head_bytes)
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            self._head_bytes += len(name) + len(value) + 4
            self._check_head_size(self._head_bytes)
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self._refused:
            self._in_head = False
            self._stop_head_timer()
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._stop_drain_timer()
            super().on_message_complete()

    def on_response_complete(self) -> None:
        # With nothing queued, `cycle` is the request just answered (a queued one was read after its whole body).
        unread = not self.pipeline and self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if self.transport.is_closing():
            return
        if unread:
            # Answered before its body was read (a 413, a 408, a route that ignores bodies): uvicorn reads the rest
            # and drops it, and each byte stops its keep-alive timer; the rest gets as long as a head would.
            self._drain_timer = self.loop.call_later(self.header_timeout, self.transport.close)
        if self._in_head and self._head_timer is not None:
            # uvicorn stopped reading while a queued request waited: the head's time starts again with reading.
            self._restart_head_timer()

    # -- refusals -----------------------------------------------------------------------------

    def _start_head(self, fresh: bool) -> None:
        self._in_head, self._fresh_head = True, fresh
        self._head_bytes = self._head_raw = 0
        if self._stray:  # a request begins at last: its head gets its own time
            self._stray = False
            self._stop_head_timer()
        if self._head_timer is None:
            self._restart_head_timer()

    def _check_head_size(self, size: int) -> None:
        if size > self.max_header_bytes:
            self._refuse(431, f"the request line and headers are larger than {self.max_header_bytes} bytes")

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._stray:  # idle after stray bytes, no request begun: close as uvicorn's keep-alive would, unanswered
            self.transport.close()
            return
        if self.flow.read_paused:  # uvicorn is not reading (a queued request waits): the client is not late
            self._restart_head_timer()
            return
        self._refuse(408, f"the request line and headers did not arrive within {self.header_timeout:g} seconds")

    def _refuse(self, status: int, detail: str) -> None:
        """Answer with a problem and close: the rest of the head, if any, is never read. Behind a response still
        under way (the head is a pipelined request's) nothing is written: that response ends, then the connection."""
        if self._refused or self.transport.is_closing():
            return
        self._refused = True
        self._stop_head_timer()
        log.warning(detail, extra={"fields": {"event": "refused", "status": status, "client": self.client}})
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False
            return
        body = problem_bytes(status, detail)
        head = (
            f"HTTP/1.1 {status} {title_of(status)}\r\ncontent-type: {PROBLEM_JSON}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()

    def _restart_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        timer = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
            self._head_timer = None

    def _stop_drain_timer(self) -> None:
        timer = getattr(self, "_drain_timer", None)
        if timer is not None:
            timer.cancel()
            self._drain_timer = None


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
