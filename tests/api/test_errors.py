from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bench.service import serving_in_thread
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.fake_llm import FakeLLM, Reply
from tests.raw_http import exchange


class _Broken:
    """The seed pipeline with one read that fails the way a bug would."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    def __getattr__(self, name: str) -> object:
        return getattr(self._pipeline, name)

    def documents(self) -> list:
        raise RuntimeError("a bug")


def test_an_unexpected_error_is_a_500_problem_with_the_request_id(settings: Settings, pipeline: Pipeline) -> None:
    # The default TestClient re-raises whatever escapes the app: the error must be answered inside it, not
    # handed to the server (which would log it as an ASGI crash and reset the connection).
    with TestClient(create_app(settings, pipeline=_Broken(pipeline))) as client:  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        response = client.get("/documents", headers={"X-Request-ID": "trace-500"})
        assert response.status_code == 500
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"] == "trace-500"
        assert response.json()["detail"] == "internal error: the server failed to handle this request"
        assert "a bug" not in response.text and "Traceback" not in response.text
        assert client.get("/health").status_code == 200


@pytest.fixture(scope="module")
def impatient(settings: Settings, pipeline: Pipeline) -> Iterator[tuple[str, int]]:
    """The app under uvicorn, giving up on a body after a second without bytes."""
    app = create_app(settings.model_copy(update={"body_timeout_seconds": 1.0}), pipeline=pipeline)
    with serving_in_thread(app, timeout=60) as url:
        parts = urlsplit(url)
        yield parts.hostname or "", parts.port or 0


def _head(path: str, length: int, content_type: str = "application/json") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {length}\r\nX-Request-ID: slow-1\r\n\r\n"
    ).encode()


def test_a_body_that_stops_arriving_gets_a_408_and_the_connection_closes(impatient: tuple[str, int]) -> None:
    body = json.dumps({"question": "What did Putin say about China's 12-point plan?"}).encode()
    # Part of the body, then nothing: the reply comes, and the server closes the connection (the reader gets
    # to the end of the stream) without the client closing its side.
    reply, seconds = exchange(impatient, [_head("/query", len(body)), body[:10]])
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b"x-request-id: slow-1" in head.lower() and b"connection: close" in head.lower()
    problem = json.loads(payload)
    assert problem["status"] == 408 and "stopped arriving" in problem["detail"]
    assert seconds < 8


def test_a_slow_but_steady_body_is_read_whole(impatient: tuple[str, int]) -> None:
    body = json.dumps({"question": "What did Putin say about China's 12-point plan?"}).encode()
    pieces = [body[i : i + 12] for i in range(0, len(body), 12)]
    # Each pause is under the limit while the whole body takes longer than it.
    head = _head("/query", len(body)).replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n")
    reply, _ = exchange(impatient, [head, *pieces], pause=0.3)
    assert 0.3 * len(pieces) > 1.0
    assert reply.startswith(b"HTTP/1.1 200"), reply[:300]


def test_an_upload_that_stops_arriving_gets_a_408(impatient: tuple[str, int]) -> None:
    boundary = "b0undary"
    start = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nSome text'
    head = _head("/documents/upload", len(start) + 1000, f"multipart/form-data; boundary={boundary}")
    reply, _ = exchange(impatient, [head, start.encode()])
    assert reply.startswith(b"HTTP/1.1 408"), reply[:300]


def test_every_log_line_of_a_request_carries_its_request_id(llm_client: TestClient, fake_llm: FakeLLM) -> None:
    """A line the pipeline logs while answering (here: the LLM failed, the extractive answer stands in) names
    the request it belongs to, as the access line does."""
    import io
    import logging

    from api.logs import REQUEST_ID, JsonFormatter

    fake_llm.reply = Reply(status=500)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("newsrag.answering")
    logger.addHandler(handler)
    try:
        response = llm_client.post(
            "/query", json={"question": "What did Putin say about gas?"}, headers={"X-Request-ID": "trace-42"}
        )
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200 and response.headers["x-request-id"] == "trace-42"
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines and all(line["request_id"] == "trace-42" for line in lines)
    assert REQUEST_ID.get() is None  # nothing leaks past the request
