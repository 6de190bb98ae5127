"""What a crash left behind (passages no record names) is removed by `rag serve`'s audit after start, and the
passages of a record that lost them are written again, with no `rag ingest`."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from api.main import create_app
from rag.pipeline import build_pipeline
from tests.conftest import SEEDS, make_settings


def test_the_audit_after_start_removes_a_crash_s_leftovers_and_restores_lost_passages(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, seeds_dir=SEEDS, stale_chunk_seconds=1.0)
    first = build_pipeline(settings)
    first.ingest([SEEDS / "003_99b702be79d94449.txt"])
    article = next(iter(first.documents()))
    with first.store._using() as (chunks, _, _):
        chunks.upsert(  # a crash between a new article's passages and its record
            ids=["ghost-1"],
            embeddings=[np.full(first.embedder.dim, 0.05).tolist()],
            documents=["A passage whose article was never recorded."],
            metadatas=[{"article_id": "ghost", "article_hash": "v1", "written_at": 0.0, "index": 0}],
        )
        chunks.delete(where={"article_id": article.id})  # a record whose passages were lost
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while True:
            with first.store._using() as (chunks, _, _):
                ids = [str(m["article_id"]) for m in chunks.get(include=["metadatas"])["metadatas"]]
            if "ghost" not in ids and ids.count(article.id) == article.chunk_count:
                break
            assert time.monotonic() < deadline, f"still {ids}"
            time.sleep(0.2)
        question = {"question": "Who did Xi meet in Moscow?", "include_retrieved": True}
        while (found := client.post("/query", json=question)).status_code != 200:  # upkeep loads the rewrite
            assert time.monotonic() < deadline, found.text
            time.sleep(0.2)
        assert any(r["article_id"] == article.id for r in found.json()["retrieved"])
