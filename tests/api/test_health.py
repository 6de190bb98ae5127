from __future__ import annotations

import socket
import time
from pathlib import Path

from fastapi.testclient import TestClient

from api.main import create_app
from tests.conftest import make_settings


def test_health_is_ready_once_the_index_is_loaded(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body == {"status": "ready", "detail": None, "articles": 7, "chunks": body["chunks"]}
    assert body["chunks"] > 7


def test_openapi_docs_are_served(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    assert {"/query", "/documents", "/health"} <= set(spec["paths"])


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_chroma_server_means_not_ready_and_503s(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=_closed_port())
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        query = client.post("/query", json={"question": "What did Putin say?"})
        assert query.status_code == 503
        assert query.headers["content-type"] == "application/problem+json"
        assert "unavailable" in query.json()["detail"]
