"""A full disk: writes refused with 507 before the disk fills, reads go on, writes come back without a restart,
nothing half-written, and a write that fails part-way says which articles went in.

The first test runs `bench/full_disk.py` on a real tmpfs (where this machine lets the tests mount one); the
others inject ENOSPC at the storage boundary (the Chroma client), as a disk full at any moment of a write."""

from __future__ import annotations

import errno
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from bench.full_disk import failures, run, small_disk
from bench.service import serving_in_thread
from rag.deadlines import StoreGate
from rag.disk import DiskGuard
from rag.errors import InsufficientStorage, StoreUnavailable
from rag.models import ArticleFields
from rag.pipeline import Pipeline, build_pipeline, chroma_client_factory
from rag.settings import Settings
from rag.storage import ChromaStore
from tests.conftest import make_settings

KEY = "test-full-disk-key"


def test_a_full_tmpfs_refuses_writes_and_keeps_answering() -> None:
    try:
        disk = small_disk(64)
        mounted = disk.__enter__()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        result = run(mounted, min_free_mb=8, headroom_mb=24)
    finally:
        disk.__exit__(None, None, None)
    assert failures(result) == [], result
    assert result.acknowledged >= 4 and result.refused_status[0] == 507
    assert "disk" in result.first_refusal and "RAG_MIN_FREE_DISK_MB" in result.first_refusal


class Disk:
    """What the injected disk does: fail the chunk collection's upserts from the `fail_from`-th on (None: never),
    and how much space it reports free."""

    def __init__(self) -> None:
        self.fail_from: int | None = None
        self.upserts = 0
        self.free_mb = 10_000.0


class FullDiskCollection:
    def __init__(self, target: Any, disk: Disk) -> None:
        self._target, self._disk = target, disk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def upsert(self, **kwargs: Any) -> Any:
        self._disk.upserts += 1
        if self._disk.fail_from is not None and self._disk.upserts >= self._disk.fail_from:
            self._disk.free_mb = 0.5
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._target.upsert(**kwargs)


class FullDiskClient:
    def __init__(self, target: Any, disk: Disk) -> None:
        self._target, self._disk = target, disk

    def get_or_create_collection(self, name: str, **kwargs: Any) -> Any:
        col = self._target.get_or_create_collection(name, **kwargs)
        return FullDiskCollection(col, self._disk) if name.endswith("-chunks") else col


class MeasuredGuard(DiskGuard):
    def __init__(self, path: Path, min_free_mb: float, disk: Disk) -> None:
        super().__init__(path, min_free_mb)
        self._disk = disk

    def free_mb(self) -> float:
        return self._disk.free_mb


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[tuple[Pipeline, Disk]]:
    settings = make_settings(tmp_path, ingest_on_start=False, stale_chunk_seconds=1.0, api_keys=KEY)
    disk = Disk()
    pipeline = build_pipeline(settings)
    real = chroma_client_factory(settings)
    pipeline.store = pipeline.indexer._store = pipeline.retriever._store = ChromaStore(  # type: ignore[misc]
        lambda: FullDiskClient(real(), disk),
        settings.collection,
        pipeline.embedder.dim,
        pipeline.embedder.name,
        stale_after=1.0,
        gate=StoreGate(2.0),
        disk=MeasuredGuard(settings.chroma_path, 100.0, disk),
    )
    yield pipeline, disk


def notes(start: int, count: int, sentences: int = 40) -> list[ArticleFields]:
    return [
        ArticleFields(
            f"note-{n}",
            f"Harbour note {n}",
            " ".join(f"Ship {n}-{k} docked at berth {k} of the harbour on a calm morning." for k in range(sentences)),
            "Gazette",
        )
        for n in range(start, start + count)
    ]


def chunk_rows(pipeline: Pipeline) -> list[str]:
    with pipeline.store._using() as (chunks, _, _):
        return [str(m["article_id"]) for m in chunks.get(include=["metadatas"])["metadatas"]]


def test_enospc_mid_write_is_insufficient_storage_and_leaves_nothing_half_written(
    full_disk: tuple[Pipeline, Disk],
) -> None:
    pipeline, disk = full_disk
    pipeline.add(notes(0, 1), 100_000)
    disk.fail_from = disk.upserts + 1
    with pytest.raises(InsufficientStorage, match=r"disk holding the index .* is full"):
        pipeline.add(notes(1, 1), 100_000)
    with pytest.raises(InsufficientStorage, match="writes are refused"):  # refused before anything is embedded
        pipeline.add(notes(2, 1), 100_000)
    assert pipeline.ask("Which ship docked at berth 3?").citations  # questions are still answered, from memory
    with pytest.raises(StoreUnavailable, match="cannot be read until space is freed"):  # a read could hang Chroma
        pipeline.documents()
    assert pipeline.health().writes_refused

    disk.fail_from, disk.free_mb = None, 10_000.0  # space is back: no restart
    time.sleep(3.1)  # the failed write's leftovers go once its calls' deadline (2 s) has surely passed
    pipeline.add(notes(2, 1), 100_000)
    assert {r.id for r in pipeline.documents()} == {"note-0", "note-2"}  # nothing of note-1, half or whole
    assert set(chunk_rows(pipeline)) == {"note-0", "note-2"}  # the failed write's rows went with the next write
    assert pipeline.health().writes_refused is None


def test_an_upload_that_fails_part_way_says_which_articles_went_in(
    full_disk: tuple[Pipeline, Disk], tmp_path: Path
) -> None:
    pipeline, disk = full_disk
    settings: Settings = pipeline.settings
    rows = [{"id": a.id, "title": a.title, "body": a.body, "source": a.source} for a in notes(0, 40, sentences=25)]
    upload = "\n".join(json.dumps(r) for r in rows).encode()
    disk.fail_from = 2  # the second batch of chunks meets a full disk
    with serving_in_thread(create_app(settings, pipeline)) as url:
        headers = {"Authorization": f"Bearer {KEY}"}
        response = httpx.post(
            f"{url}/documents/upload", files={"file": ("notes.jsonl", upload)}, headers=headers, timeout=120
        )
        assert response.status_code == 507, response.text
        problem = response.json()
        disk.fail_from, disk.free_mb = None, 10_000.0  # space freed, to read what is stored
        stored = {r.id for r in pipeline.documents()}
        assert problem["written"] and set(problem["written"]) == stored
        assert stored < {r["id"] for r in rows}
        assert f"stored {len(stored)} of 40 articles" in problem["detail"]
        for article_id in problem["written"]:  # what it says went in is whole and searchable
            assert httpx.get(f"{url}/documents/{article_id}", headers=headers).json()["chunk_count"] >= 1
