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


def test_health_shows_the_start_up_ingest_while_it_runs(tmp_path: Path) -> None:
    import threading

    from rag.pipeline import build_pipeline

    settings = make_settings(tmp_path)
    pipeline = build_pipeline(settings)
    release = threading.Event()
    real_ingest = pipeline.ingest

    def slow_ingest(paths, progress=None):  # type: ignore[no-untyped-def]
        def paused(done: int, total: int) -> None:
            if progress:
                progress(done, total)
            release.wait(30)

        return real_ingest(paths, progress=paused)

    pipeline.ingest = slow_ingest  # type: ignore[method-assign]
    with TestClient(create_app(settings, pipeline=pipeline)) as client:
        deadline = time.monotonic() + 60
        body = client.get("/health").json()
        while "progress" not in body or body["progress"] is None:
            assert time.monotonic() < deadline and body["status"] == "loading", body
            time.sleep(0.05)
            body = client.get("/health").json()
        assert body["status"] == "loading" and 0 < body["progress"]["done"] <= body["progress"]["total"]
        assert f"{body['progress']['done']} of {body['progress']['total']} articles" in body["detail"]
        release.set()
        while client.get("/health").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_failed_start_up_is_tried_again_until_the_store_is_there(tmp_path: Path) -> None:
    from tests.rag.test_chroma_server import ChromaServer

    server = ChromaServer(tmp_path / "chroma")
    settings = make_settings(tmp_path, chroma_host="127.0.0.1", chroma_port=server.port, ingest_on_start=False)
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while "trying again" not in (client.get("/health").json().get("detail") or ""):
            assert time.monotonic() < deadline, "start-up never said it would try again"
            time.sleep(0.05)
        health = client.get("/health").json()
        assert health["status"] == "unavailable" and "start-up failed (attempt" in health["detail"]
        server.start()
        try:
            deadline = time.monotonic() + 40
            while client.get("/health").status_code != 200:
                assert time.monotonic() < deadline, "start-up was not tried again"
                time.sleep(0.1)
        finally:
            server.stop()
