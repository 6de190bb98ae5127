from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.lexical import LexicalIndex
from rag.loading import article_from_body, load_file
from rag.models import ArticleFields
from rag.pipeline import Pipeline, build_pipeline
from rag.retrieval import HybridRetriever
from rag.snapshot import Passages, Snapshot
from tests.conftest import SEEDS, make_settings


@pytest.fixture()
def fresh(tmp_path: Path) -> tuple[Pipeline, Path]:
    corpus = tmp_path / "corpus"
    shutil.copytree(SEEDS, corpus)
    return build_pipeline(make_settings(tmp_path / "data", seeds_dir=corpus)), corpus


def chunk_rows(pipeline: Pipeline) -> dict[str, dict]:
    with pipeline.store._using() as (chunks, _, _):
        got = chunks.get(include=["metadatas", "documents"])
    return {i: {"meta": m, "text": d} for i, m, d in zip(got["ids"], got["metadatas"], got["documents"], strict=True)}


def test_ingesting_the_same_files_twice_adds_nothing(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    first = pipeline.ingest([corpus])
    rows = chunk_rows(pipeline)
    second = pipeline.ingest([corpus])
    assert (first.added, first.chunks) == (7, len(rows))
    assert (second.added, second.updated, second.unchanged, second.chunks) == (0, 0, 7, 0)
    assert chunk_rows(pipeline).keys() == rows.keys()


def test_a_changed_article_replaces_its_chunks(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    before = chunk_rows(pipeline)
    path = corpus / "003_99b702be79d94449.txt"
    path.write_text(
        path.read_text(encoding="utf-8").replace("stable as mountains", "steady as the Urals"), encoding="utf-8"
    )
    report = pipeline.ingest([corpus])
    after = chunk_rows(pipeline)
    assert (report.updated, report.unchanged) == (1, 6)
    old = {i for i, r in before.items() if r["meta"]["article_id"] == "003_99b702be79d94449-1"}
    new = {i for i, r in after.items() if r["meta"]["article_id"] == "003_99b702be79d94449-1"}
    assert old and new and not old & new
    texts = " ".join(r["text"] for r in after.values())
    assert "steady as the Urals" in texts and "stable as mountains" not in texts
    record = pipeline.store.get_article("003_99b702be79d94449-1")
    assert record.chunk_count == len(new)
    answer = pipeline.ask("How did Putin describe the partnership at Samarkand?")
    assert "stable as mountains" not in answer.text


def test_an_article_gone_from_its_file_is_removed(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    path = corpus / "001_7906c61ad8bc5696.txt"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: text.index("Keep reading")], encoding="utf-8")
    report = pipeline.ingest([corpus])
    assert report.removed == 1
    ids = {r.id for r in pipeline.documents()}
    assert "001_7906c61ad8bc5696-3" not in ids and "001_7906c61ad8bc5696-2" in ids
    assert not [r for r in chunk_rows(pipeline).values() if r["meta"]["article_id"] == "001_7906c61ad8bc5696-3"]


def test_chunks_left_by_an_interrupted_write_are_invisible_and_repaired(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    visible = len(pipeline.store.visible_chunks())
    rows = chunk_rows(pipeline)
    some_id, row = next(iter(rows.items()))
    # What a crash between "write new chunks" and "write the article record" leaves behind:
    # a chunk whose article version no record vouches for; and one of a write still landing (young).
    orphan = dict(row["meta"], article_hash="0" * 16, written_at=time.time() - pipeline.store.stale_after - 1)
    landing = dict(row["meta"], article_hash="1" * 16, written_at=time.time())
    with pipeline.store._using() as (chunks, _, _):
        chunks.add(ids=["orphan-1", "landing-1"], embeddings=[[0.1] * 384] * 2, documents=[row["text"]] * 2,
                   metadatas=[orphan, landing])  # fmt: skip
    assert len(pipeline.store.visible_chunks()) == visible
    assert pipeline.store.repair() == 1
    assert "orphan-1" not in chunk_rows(pipeline) and {some_id, "landing-1"} <= set(chunk_rows(pipeline))


def test_deleting_an_article_removes_it_everywhere(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    pipeline.delete("002_353d98a7930780b3-1")
    assert "002_353d98a7930780b3-1" not in {r.id for r in pipeline.documents()}
    assert all(r["meta"]["article_id"] != "002_353d98a7930780b3-1" for r in chunk_rows(pipeline).values())
    hits = pipeline.ask("Power of Siberia 2 pipeline via Mongolia", top_k=10).retrieved
    assert all(h.chunk.article_id != "002_353d98a7930780b3-1" for h in hits)


def held(snapshot: Snapshot) -> list[tuple[str, str, int, int]]:
    """What a snapshot holds of each chunk, in a comparable order."""
    cols = snapshot.columns
    return sorted(
        (snapshot.article_of(r), snapshot.chunk_id(r), int(cols.days[r]), int(cols.sources[r] >= 0))
        for r in range(len(snapshot))
    )


def full_load(pipeline: Pipeline, token: str) -> Snapshot:
    return Snapshot.load(pipeline.store, token, None, Passages(pipeline.store), LexicalIndex())


def test_an_incremental_refresh_equals_a_full_reload(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    before = pipeline.retriever.refresh(force=True)
    path = corpus / "000_26e4b23e68a8d043.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("98 billion", "99 billion"), encoding="utf-8")
    pipeline.ingest([corpus])
    pipeline.delete("003_99b702be79d94449-1")
    incremental = pipeline.retriever.refresh(force=True)
    full = full_load(pipeline, incremental.token)
    assert incremental is not before
    assert held(incremental) == held(full)
    assert incremental.records == full.records and incremental.copies == full.copies
    assert all(r.signature is None for r in incremental.records.values())  # the indexer's, not kept
    assert "003_99b702be79d94449-1" not in incremental.records and not incremental.article_rows(
        "003_99b702be79d94449-1"
    )
    assert incremental.article_count == full.article_count == before.article_count - 1
    for snapshot in (incremental, full):  # the rewritten article's rows moved to the end: still found as its own
        rows = [r for a in snapshot.records for r in snapshot.article_rows(a)]
        assert sorted(rows) == list(range(len(snapshot)))
        assert all(snapshot.article_of(r) == a for a in snapshot.records for r in snapshot.article_rows(a))
    assert any("99 billion" in p.chunk.text for p in incremental.read(range(len(incremental))).values())


def test_a_reload_reads_only_what_the_change_log_names(
    fresh: tuple[Pipeline, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    replica = HybridRetriever(pipeline.store, pipeline.embedder, refresh_seconds=0)
    replica.refresh()
    path = corpus / "000_26e4b23e68a8d043.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("98 billion", "99 billion"), encoding="utf-8")
    pipeline.ingest([corpus])
    pipeline.delete("003_99b702be79d94449-1")
    scans: list[int] = []
    read: list[list[str] | None] = []
    records, rows = pipeline.store.article_records, pipeline.store.chunk_rows
    monkeypatch.setattr(pipeline.store, "article_records", lambda: scans.append(1) or records())
    monkeypatch.setattr(pipeline.store, "chunk_rows", lambda r, ids=None: read.append(ids) or rows(r, ids))
    snapshot = replica.refresh()
    assert scans == []  # no record but those the log names was read
    changed = [a for a in snapshot.records if a.startswith("000_26e4b23e68a8d043")]
    assert read == [changed] and snapshot.changed == tuple(changed)
    monkeypatch.undo()
    assert held(snapshot) == held(full_load(pipeline, snapshot.token))
    assert {a: r.content_hash for a, r in snapshot.records.items()} == {
        a: r.content_hash for a, r in pipeline.store.article_records().items()
    }
    # A reload once the log has been cut past the gap (another replica pruned it) compares every record instead.
    quake = ArticleFields("quake-1", "Quake hits Afghanistan", "A magnitude 5.9 earthquake hit Paktika.")
    pipeline.add([quake], 10_000)
    pipeline.store.change_log_seconds = 0.0
    pipeline.store.prune_changes()
    assert pipeline.store.changes_since(0.0) is None
    scans.clear()
    monkeypatch.setattr(pipeline.store, "article_records", lambda: scans.append(1) or records())
    assert replica.refresh().article_rows("quake-1")
    assert scans == [1]


def test_one_bulk_write_adds_replaces_and_empties_articles_together(fresh: tuple[Pipeline, Path]) -> None:
    pipeline, corpus = fresh
    pipeline.ingest([corpus])
    store, indexer = pipeline.store, pipeline.indexer
    records = store.article_records()
    articles = {a.id: a for f in sorted(corpus.iterdir()) for a in load_file(f)}
    changed = dataclasses.replace(articles["002_353d98a7930780b3-1"], title="A new headline")
    empty = dataclasses.replace(articles["003_99b702be79d94449-1"], id="empty-1", body=())
    extra = dataclasses.replace(articles["003_99b702be79d94449-1"], id="copy-1")
    writes = []
    for article in (changed, empty, extra):
        chunks = indexer.chunker.split(article)
        vectors = np.random.default_rng(0).normal(size=(len(chunks), 384)).astype(np.float32)
        writes.append((article, chunks, vectors, [np.ones((len(c.sentences), 384), np.float32) for c in chunks]))
    store.write_articles(writes)
    after = store.article_records()
    assert after["002_353d98a7930780b3-1"].content_hash == changed.content_hash
    assert after["002_353d98a7930780b3-1"].content_hash != records["002_353d98a7930780b3-1"].content_hash
    assert after["empty-1"].chunk_count == 0 and after["copy-1"].chunk_count == len(writes[2][1])
    rows = chunk_rows(pipeline).values()
    by_article: dict[str, set[str]] = {}
    for row in rows:
        by_article.setdefault(row["meta"]["article_id"], set()).add(row["meta"]["article_hash"])
    # exactly one version per article is stored: the old one of the replaced article is gone
    assert by_article["002_353d98a7930780b3-1"] == {changed.content_hash}
    assert by_article["copy-1"] == {extra.content_hash} and "empty-1" not in by_article
    assert all(len(hashes) == 1 for hashes in by_article.values())


class _HeldEmbedder:
    """The real embedder, except that a batch holding `marker` waits at the model until released."""

    def __init__(self, inner: object, marker: str) -> None:
        self._inner = inner
        self._marker = marker
        self.embedding = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def embed_passages(self, texts, spans):  # type: ignore[no-untyped-def]
        if any(self._marker in t for t in texts):
            self.embedding.set()
            assert self.release.wait(60)
        return self._inner.embed_passages(texts, spans)  # type: ignore[attr-defined]


def test_a_small_write_does_not_wait_for_a_large_one_to_embed(tmp_path: Path) -> None:
    pipeline = build_pipeline(make_settings(tmp_path / "data"))
    held = _HeldEmbedder(pipeline.indexer._embedder, "glacier")
    pipeline.indexer._embedder = held  # type: ignore[assignment]
    big = article_from_body("big", "Glacier survey", "The glacier retreated again this year. " * 50, "test")
    small = article_from_body("small", "Harbour news", "The harbour reopened on Monday after repairs.", "test")
    writer = threading.Thread(target=pipeline.indexer.ingest, args=([big],))
    writer.start()
    try:
        assert held.embedding.wait(60)
        quick = threading.Thread(target=pipeline.indexer.ingest, args=([small],))
        quick.start()
        quick.join(60)  # a guard against hanging, not a speed target: it must not wait for `release` at all
        assert not quick.is_alive(), "the small write waited for the large one's embedding"
        assert pipeline.store.article_records().keys() == {"small"}
    finally:
        held.release.set()
        writer.join(60)
    assert pipeline.store.article_records().keys() == {"small", "big"}
