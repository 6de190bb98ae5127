"""Articles read back from Chroma's SQLite rows alone, as `rag recover` does for a database Chroma cannot open."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from rag.loading import article_from_body, load_file
from rag.pipeline import build_pipeline
from rag.recovery import RecoveryError, read_articles
from rag.settings import Settings
from tests.conftest import SEEDS, make_settings


def test_the_seed_index_gives_back_every_article_exactly(settings: Settings, pipeline: object) -> None:
    recovered = read_articles(settings.data_dir, settings.collection)
    seeds = {a.id: a for path in sorted(SEEDS.iterdir()) for a in load_file(path)}
    assert {a.id: a for a in recovered.articles} == seeds
    assert recovered.changed == [] and recovered.lost == []


def _small_index(data_dir: Path) -> Settings:
    """Three versions written and one article deleted: recovery must give the versions that count now."""
    settings = make_settings(data_dir)
    pipeline = build_pipeline(settings)
    first = article_from_body("a1", "Gas deal", "Russia and China signed a gas deal on Monday.", "wire")
    second = article_from_body("a2", "Port strike", "Dock workers in Antwerp went on strike.", "wire")
    gone = article_from_body("a3", "Gone", "This article is deleted before the crash.", "wire")
    pipeline.ingest_articles([first, second, gone])
    changed = article_from_body(
        "a1",
        "Gas deal revised",
        "Russia and China revised the gas deal on Tuesday.",
        "wire",
        published_at=date(2023, 3, 21),
        url="https://example.com/gas",
        source_file="wire.jsonl",
    )
    pipeline.ingest_articles([changed])
    pipeline.delete("a3")
    return settings


def _copy_of(settings: Settings, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the index's data dir to tamper with, and its Chroma database file."""
    copy = tmp_path / "copy"
    shutil.copytree(settings.data_dir, copy)
    return copy, copy / "chroma" / "chroma.sqlite3"


def test_the_current_version_of_each_article_comes_back(tmp_path: Path) -> None:
    settings = _small_index(tmp_path / "data")
    recovered = read_articles(settings.data_dir, settings.collection)
    by_id = {a.id: a for a in recovered.articles}
    assert sorted(by_id) == ["a1", "a2"]
    assert by_id["a1"].title == "Gas deal revised" and by_id["a1"].text.startswith("Russia and China revised")
    assert (by_id["a1"].published_at, by_id["a1"].url) == (date(2023, 3, 21), "https://example.com/gas")
    assert by_id["a1"].source_file == "wire.jsonl" and by_id["a2"].published_at is None
    assert recovered.changed == [] and recovered.lost == []


def test_rows_that_do_not_rebuild_their_version_are_reported(tmp_path: Path) -> None:
    settings = _small_index(tmp_path / "data")
    copy, db = _copy_of(settings, tmp_path)
    with sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT embedding_id, id FROM embeddings WHERE embedding_id IN ('a1', 'a2')"))
        conn.execute(
            "UPDATE embedding_metadata SET string_value = 'Edited' WHERE id = ? AND key = 'title'", (ids["a1"],)
        )
        conn.execute("DELETE FROM embedding_metadata WHERE id = ? AND key = 'chroma:document'", (ids["a2"],))
    recovered = read_articles(copy, settings.collection)
    assert [a.id for a in recovered.articles] == ["a1"] and recovered.articles[0].title == "Edited"
    assert recovered.changed == ["a1"] and recovered.lost == ["a2"]
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE embedding_metadata SET string_value = 'soon' WHERE id = ? AND key = 'published_at'", (ids["a1"],)
        )
    assert read_articles(copy, settings.collection).lost == ["a1", "a2"]


def test_writes_logged_but_not_yet_applied_are_replayed(tmp_path: Path) -> None:
    settings = _small_index(tmp_path / "data")
    copy, db = _copy_of(settings, tmp_path)
    with sqlite3.connect(db) as conn:
        (collection_id,) = conn.execute("SELECT id FROM collections WHERE name = 'newsrag-articles'").fetchone()
        topic, last = conn.execute(
            "SELECT topic, MAX(seq_id) FROM embeddings_queue WHERE topic LIKE ?", (f"%/{collection_id}",)
        ).fetchone()
        (seq,) = conn.execute("SELECT MAX(seq_id) FROM embeddings_queue").fetchone()
        meta = {k: v for k, v in conn.execute(
            "SELECT m.key, COALESCE(m.string_value, m.int_value) FROM embedding_metadata m "
            "JOIN embeddings e ON e.id = m.id WHERE e.embedding_id = 'a2'"
        )}  # fmt: skip
        # As if Chroma had logged two writes and crashed before applying them: a new article, and a2 deleted.
        rows = [
            (seq + 1, 2, topic, "a9", json.dumps(dict(meta, title="Port strike ends"))),
            (seq + 2, 3, topic, "a2", None),
        ]
        conn.executemany(
            "INSERT INTO embeddings_queue (seq_id, operation, topic, id, metadata) VALUES (?, ?, ?, ?, ?)", rows
        )
    assert last is not None
    recovered = read_articles(copy, settings.collection)
    assert sorted(a.id for a in recovered.articles) == ["a1", "a9"]
    assert next(a for a in recovered.articles if a.id == "a9").title == "Port strike ends"
    assert recovered.changed == ["a9"] and recovered.lost == []  # the new title is not the version its hash names


def test_a_folder_without_the_database_or_the_index_is_a_clear_error(
    tmp_path: Path, settings: Settings, pipeline: object
) -> None:
    with pytest.raises(RecoveryError, match=r"no chroma\.sqlite3"):
        read_articles(tmp_path, "newsrag")
    with pytest.raises(RecoveryError, match=r"no collection 'other-articles'.*newsrag-articles"):
        read_articles(settings.data_dir, "other")
    junk = tmp_path / "chroma.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    with pytest.raises(RecoveryError, match="not a Chroma database"):
        read_articles(tmp_path, "newsrag")
