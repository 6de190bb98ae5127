"""What a replica holds in memory, and what it reads to load it: a restart reads only what changed while it was
stopped, a broken rows file costs a full read and nothing else, and the caches stay within their caps."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.lexical import LexicalIndex
from rag.models import ArticleFields
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings
from rag.snapshot import ROWS_FILE, BoundedCache, Passages, Snapshot
from tests.conftest import SEEDS, make_settings

QUAKE = ArticleFields("quake-1", "Quake hits Afghanistan", "A magnitude 5.9 earthquake hit Paktika province.")


def held(snapshot: Snapshot) -> list[tuple[str, str, int]]:
    return sorted(
        (snapshot.article_of(r), snapshot.chunk_id(r), int(snapshot.columns.days[r])) for r in range(len(snapshot))
    )


def full(pipeline: Pipeline, token: str) -> Snapshot:
    return Snapshot.load(pipeline.store, token, None, Passages(pipeline.store), LexicalIndex())


def spy_reads(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> list[list[str] | None]:
    """The article ids of each `chunk_rows` call (None: every chunk)."""
    read: list[list[str] | None] = []
    rows = pipeline.store.chunk_rows
    monkeypatch.setattr(pipeline.store, "chunk_rows", lambda r, ids=None: read.append(ids) or rows(r, ids))
    return read


def test_a_restart_reads_only_the_articles_changed_while_it_was_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path / "data", ingest_on_start=False)
    first = build_pipeline(settings)
    first.ingest([SEEDS])
    first.load()
    first.close()  # saves its rows beside the lexical index
    assert (settings.lexical_path / ROWS_FILE).is_file()

    writer = build_pipeline(settings.model_copy(update={"lexical_dir": tmp_path / "writer"}))
    writer.add([QUAKE], 10_000)
    writer.delete("002_353d98a7930780b3-1")
    writer.close()

    restarted = build_pipeline(settings)
    read = spy_reads(restarted, monkeypatch)
    restarted.load()
    snapshot = restarted.retriever.refresh()
    assert read == [["quake-1"]]  # not every chunk: only the article written while it was stopped
    assert restarted.retriever.lexical.indexed_chunks == len(snapshot.article_rows("quake-1")) > 0
    monkeypatch.undo()
    assert held(snapshot) == held(full(restarted, snapshot.token))
    assert not snapshot.article_rows("002_353d98a7930780b3-1")
    hits = restarted.retriever.retrieve("Where did the earthquake hit?", top_k=3).hits
    assert hits[0].chunk.article_id == "quake-1"
    restarted.close()


def seeded(tmp_path: Path) -> tuple[Settings, list[tuple[str, str, int]]]:
    """A stopped replica's folder over the seeds (its lexical index and saved rows), and what it held."""
    settings = make_settings(tmp_path / "data", ingest_on_start=False)
    first = build_pipeline(settings)
    first.ingest([SEEDS])
    expected = held(first.retriever.refresh())
    first.close()
    return settings, expected


@pytest.mark.parametrize(
    "damage",
    [lambda data: b"not a numpy file", lambda data: data[: len(data) // 2]],
    ids=["not a numpy file", "truncated"],
)
def test_a_broken_rows_file_costs_a_full_read_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: Callable[[bytes], bytes]
) -> None:
    settings, expected = seeded(tmp_path)
    path = settings.lexical_path / ROWS_FILE
    path.write_bytes(damage(path.read_bytes()))
    again = build_pipeline(settings)
    read = spy_reads(again, monkeypatch)
    again.load()
    assert read == [None] and held(again.retriever.refresh()) == expected
    again.close()


def test_rows_a_full_read_skipped_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chroma pages a full read by offset: a delete meanwhile (another writer) skips rows. They are read again, and
    the lexical index holds each of their chunks once."""
    settings, expected = seeded(tmp_path)
    replica = build_pipeline(settings.model_copy(update={"lexical_dir": tmp_path / "replica"}))
    rows = replica.store.chunk_rows
    victim = "001_7906c61ad8bc5696-2"

    def skipping(records: object, ids: object = None) -> object:
        for page in rows(records, ids):  # type: ignore[arg-type]
            yield [r for r in page if ids is not None or r.article_id != victim or r.index != 0]

    monkeypatch.setattr(replica.store, "chunk_rows", skipping)
    snapshot = replica.retriever.refresh()
    assert held(snapshot) == expected
    victim_rows = snapshot.article_rows(victim)
    assert len(victim_rows) == snapshot.records[victim].chunk_count
    found = [r for r, _ in snapshot.lexical.top(sorted(snapshot.article_terms(victim)), len(snapshot))]
    assert sorted(r for r in found if r in victim_rows) == list(victim_rows)
    replica.close()


def test_a_lexical_folder_that_cannot_be_read_moves_to_memory_at_load(tmp_path: Path) -> None:
    settings, expected = seeded(tmp_path)
    state = settings.lexical_path / "state.json"
    state.unlink()
    state.mkdir()  # neither read, nor removed, nor replaced
    again = build_pipeline(settings)
    again.load()
    assert again.retriever.lexical.path is None and held(again.retriever.refresh()) == expected
    assert again.retriever.retrieve("Power of Siberia 2 pipeline through Mongolia", top_k=3).hits
    again.close()


def test_caches_stay_within_their_caps(pipeline: Pipeline) -> None:
    cache: BoundedCache[int, int] = BoundedCache(3)
    for n in range(10):
        assert cache.get(n, lambda n=n: n * n) == n * n
        assert len(cache) <= 3
    passages = Passages(pipeline.store, cached_chunks=4, cached_vectors=4)
    snapshot = pipeline.retriever.refresh()
    ids = [snapshot.chunk_id(r) for r in range(len(snapshot))]
    assert len(passages.read(ids)) == len(ids) > 4  # all read, only the cap kept
    assert len(passages._chunks) <= 4
    matrix, present = passages.vectors(ids)
    assert present.all() and matrix.shape == (len(ids), 384) and len(passages._vectors) <= 4
