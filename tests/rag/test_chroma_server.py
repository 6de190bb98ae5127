"""The service against a real Chroma server (`chroma run` on loopback), including its faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bench.service import free_port
from rag.loading import load_file
from rag.pipeline import build_pipeline
from rag.settings import Settings
from tests.conftest import ROOT, SEEDS, make_settings

CHROMA = Path(sys.executable).with_name("chroma")


class ChromaServer:
    """A `chroma run` process that tests can stop and start again on the same path and port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("chroma server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma")
    srv.start()
    yield srv
    srv.stop()


def server_settings(srv: ChromaServer, tmp_path: Path, **extra: object) -> Settings:
    return make_settings(tmp_path / "unused", chroma_host="127.0.0.1", chroma_port=srv.port, **extra)


def wait_for(predicate, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def test_service_answers_from_a_chroma_server_and_survives_its_restart(server: ChromaServer, tmp_path: Path) -> None:
    with TestClient(create_app(server_settings(server, tmp_path))) as client:
        wait_for(lambda: client.get("/health").status_code == 200, 90)
        question = {"question": "What did Putin say about China's 12-point plan?"}
        assert "basis" in client.post("/query", json=question).json()["answer"]

        server.stop()
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        for down in (client.post("/query", json=question), client.get("/documents")):  # both need the store
            assert down.status_code == 503
            assert "unavailable" in down.json()["detail"] and down.headers["retry-after"]

        server.start()
        wait_for(lambda: client.get("/health").status_code == 200)
        assert "basis" in client.post("/query", json=question).json()["answer"]


def test_replicas_sharing_a_server_see_each_others_writes(server: ChromaServer, tmp_path: Path) -> None:
    one = build_pipeline(server_settings(server, tmp_path))
    two = build_pipeline(server_settings(server, tmp_path))
    one.ingest([SEEDS / "003_99b702be79d94449.txt"])
    assert len(two.retriever.refresh()) == len(one.retriever.refresh()) > 0
    one.ingest([SEEDS / "002_353d98a7930780b3.txt"])
    answer = two.ask("How much gas would the Power of Siberia 2 pipeline deliver each year?")
    assert "50 billion" in answer.text
    two.delete("002_353d98a7930780b3-1")
    assert all(
        h.chunk.article_id != "002_353d98a7930780b3-1" for h in one.ask("Power of Siberia 2", top_k=10).retrieved
    )


def synthetic_corpus(path: Path, copies: int) -> Path:
    """JSONL of real seed articles under new ids, enough work for an ingest to be interrupted."""
    articles = [a for f in sorted(SEEDS.iterdir()) for a in load_file(f)]
    with path.open("w", encoding="utf-8") as out:
        for i in range(copies):
            a = articles[i % len(articles)]
            body = f"Edition {i}.\n" + "\n".join(a.text[s.start : s.end] for s in a.body)
            out.write(json.dumps({"id": f"syn-{i}", "title": f"{a.title} ({i})", "source": "syn", "body": body}) + "\n")
    return path


def test_ingest_killed_midway_then_rerun_leaves_no_duplicates_and_nothing_missing(
    server: ChromaServer, tmp_path: Path
) -> None:
    corpus = synthetic_corpus(tmp_path / "syn.jsonl", copies=28)
    settings = server_settings(server, tmp_path)
    env = {
        **os.environ,
        "RAG_CHROMA_HOST": "127.0.0.1",
        "RAG_CHROMA_PORT": str(server.port),
        "RAG_DATA_DIR": str(tmp_path),
    }
    command = [sys.executable, "-m", "rag.cli", "ingest", str(corpus)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    probe = build_pipeline(settings)
    try:
        wait_for(lambda: proc.poll() is not None or probe.store.count_chunks() > 0, 120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    written = probe.store.count_chunks()
    assert written > 0, "the ingest should have written something before it was killed"

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr

    articles = load_file(corpus)
    expected = {c.id: c.text for a in articles for c in probe.indexer.chunker.split(a)}
    visible = {s.chunk.id: s.chunk.text for s in probe.store.visible_chunks()}
    assert visible == expected  # every chunk, exact content, no duplicates
    assert probe.store.count_chunks() == len(expected)  # nothing invisible left behind
    records = probe.store.article_records()
    assert {a.id: a.content_hash for a in articles} == {k: r.content_hash for k, r in records.items()}
