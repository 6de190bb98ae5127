"""Recovery: the articles of an embedded Chroma database that Chroma itself can no longer open.

chromadb 1.5's native HNSW code can crash (SIGSEGV) and leave a vector segment that crashes
every later open (chroma-core/chroma#6979, #7069). The articles are not in those files: each
one's text and metadata sit in rows of `chroma.sqlite3`, Chroma's metadata segment. This module
reads those rows with sqlite3 alone, read-only, and rebuilds each `Article` exactly; the caller
then ingests them into a fresh index (chunks and vectors are made again, so nothing of the
broken vector files is trusted).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.models import Article
from rag.storage import article_from_row

_DOCUMENT_KEY = "chroma:document"


class RecoveryError(RagError):
    """The folder holds no readable Chroma database with this index's articles."""


@dataclass
class Recovered:
    """What a database gave back: the articles; the ids of records that did not rebuild exactly (kept,
    their text is what it is); the ids of records without text or with unreadable values (lost)."""

    articles: list[Article] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


def database_file(path: Path) -> Path:
    """`chroma.sqlite3` of a data dir, of its `chroma/` folder, or the file itself."""
    for candidate in (path / "chroma" / "chroma.sqlite3", path / "chroma.sqlite3", path):
        if candidate.is_file():
            return candidate
    raise RecoveryError(f"{path}: no chroma.sqlite3 there (give a data dir, its chroma folder or the file)")


def _connect(db: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        conn.execute("SELECT 1 FROM collections LIMIT 1")
    except sqlite3.Error as exc:
        raise RecoveryError(f"{db}: not a Chroma database sqlite3 can read ({exc})") from exc
    return conn


def _rows(conn: sqlite3.Connection, collection: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(record id, its metadata with the document under `chroma:document`) for a collection's records."""
    segment = conn.execute(
        "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
        "WHERE c.name = ? AND s.scope = 'METADATA'",
        (collection,),
    ).fetchone()
    if segment is None:
        names = sorted(n for (n,) in conn.execute("SELECT name FROM collections"))
        raise RecoveryError(f"no collection {collection!r} in the database (it has: {', '.join(names) or 'none'})")
    cursor = conn.execute(
        "SELECT e.embedding_id, m.key, m.string_value, m.int_value, m.float_value, m.bool_value "
        "FROM embeddings e LEFT JOIN embedding_metadata m ON m.id = e.id WHERE e.segment_id = ? ORDER BY e.id",
        segment,
    )
    current: str | None = None
    meta: dict[str, Any] = {}
    for record_id, key, text, integer, real, boolean in cursor:
        if record_id != current:
            if current is not None:
                yield current, meta
            current, meta = record_id, {}
        if key is not None:
            meta[key] = next((v for v in (text, integer, real) if v is not None), None)
            if boolean is not None:
                meta[key] = bool(boolean)
    if current is not None:
        yield current, meta


def read_articles(path: Path, collection: str) -> Recovered:
    """Every article record of index `collection` in the database at `path`, rebuilt from its rows.

    On a database whose rows are intact, `changed` and `lost` are empty.
    """
    db = database_file(path)
    recovered = Recovered()
    conn = _connect(db)
    try:
        for article_id, meta in _rows(conn, f"{collection}-articles"):
            text = meta.get(_DOCUMENT_KEY)
            try:
                if not isinstance(text, str) or not text:
                    raise ValueError("no text")
                article = article_from_row(article_id, meta, text)
            except ValueError:
                recovered.lost.append(article_id)
                continue
            if article.content_hash != meta.get("content_hash"):
                recovered.changed.append(article_id)
            recovered.articles.append(article)
    except sqlite3.Error as exc:
        raise RecoveryError(f"{db}: reading the article rows failed ({exc})") from exc
    finally:
        conn.close()
    return recovered
