from __future__ import annotations

import time

from fastapi.testclient import TestClient

from api.main import create_app
from rag.pipeline import Pipeline
from rag.settings import Settings


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
