"""An OpenAI-compatible chat server on loopback for tests: real HTTP, scripted replies, recorded requests.

It speaks POST /v1/chat/completions, plain and `stream=true` (SSE chunks ending in `data: [DONE]`),
and can be told to fail: an HTTP status (500, 429), a delay past the client's timeout, or a raw body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server answers next: text (or a function of the request body), or a failure."""

    text: str | Callable[[dict[str, Any]], str] = ""
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None  # sent verbatim as the body (malformed output)


class FakeLLM:
    """Start with `start()`; set `reply`; read `requests` (the JSON bodies received, in order)."""

    def __init__(self) -> None:
        self.reply = Reply()
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-llm", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self, reply: Reply | None = None) -> None:
        self.reply = reply or Reply()
        self.requests.clear()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                fake.requests.append(body)
                reply = fake.reply
                if self.path != "/v1/chat/completions":
                    return self._send(404, b'{"error": {"message": "not found"}}')
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    error = {"error": {"message": f"scripted failure {reply.status}", "type": "server_error"}}
                    return self._send(reply.status, json.dumps(error).encode())
                stream = bool(body.get("stream"))
                if reply.raw is not None:
                    return self._send(200, reply.raw, "text/event-stream" if stream else "application/json")
                text = reply.text(body) if callable(reply.text) else reply.text
                if stream:
                    return self._send(200, _sse(text, body.get("model", "")), "text/event-stream")
                return self._send(200, json.dumps(_completion(text, body.get("model", ""))).encode())

            def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _completion(text: str, model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": text}
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _sse(text: str, model: str) -> bytes:
    pieces = [text[i : i + 12] for i in range(0, len(text), 12)]
    chunks = [{"role": "assistant", "content": ""}] + [{"content": p} for p in pieces]
    out = []
    for i, delta in enumerate(chunks):
        done = i == len(chunks) - 1
        chunk = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if done else None}],
        }
        out.append(f"data: {json.dumps(chunk)}\n\n")
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def passage_with(request: dict[str, Any], phrase: str) -> int:
    """The number the prompt gave the first passage containing `phrase` (what a good model would cite)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    for block in user.split("<passage ")[1:]:
        number = int(block.split('"', 2)[1])
        if phrase in block.split("</passage>")[0]:
            return number
    raise AssertionError(f"no passage in the prompt contains {phrase!r}")
