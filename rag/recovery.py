"""Recovery: the articles of an embedded Chroma database that Chroma itself can no longer open.

chromadb 1.5's native HNSW code can crash (SIGSEGV) and leave a vector segment that crashes
every later open (chroma-core/chroma#6979, #7069). The articles are not in those files: each
one's text and metadata sit in rows of `chroma.sqlite3`, Chroma's metadata segment. This module
reads those rows with sqlite3 alone, read-only, and rebuilds each `Article` exactly; the caller
then ingests them into a fresh index (chunks and vectors are made again, so nothing of the
broken vector files is trusted).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.models import Article
from rag.storage import article_from_row

_DOCUMENT_KEY = "chroma:document"
_ADD, _UPDATE, _DELETE = 0, 1, 3  # Chroma's operation codes in its log (2 is upsert)


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


def _rows(conn: sqlite3.Connection, collection: str) -> dict[str, dict[str, Any]]:
    """Record id -> its metadata (the document under `chroma:document`), for a collection's records: the
    metadata segment's rows, then the writes Chroma logged but had not applied to them yet."""
    found = conn.execute(
        "SELECT s.id, c.id FROM segments s JOIN collections c ON s.collection = c.id "
        "WHERE c.name = ? AND s.scope = 'METADATA'",
        (collection,),
    ).fetchone()
    if found is None:
        names = sorted(n for (n,) in conn.execute("SELECT name FROM collections"))
        raise RecoveryError(f"no collection {collection!r} in the database (it has: {', '.join(names) or 'none'})")
    segment, collection_id = found
    records: dict[str, dict[str, Any]] = {}
    cursor = conn.execute(
        "SELECT e.embedding_id, m.key, m.string_value, m.int_value, m.float_value, m.bool_value "
        "FROM embeddings e LEFT JOIN embedding_metadata m ON m.id = e.id WHERE e.segment_id = ? ORDER BY e.id",
        (segment,),
    )
    for record_id, key, text, integer, real, boolean in cursor:
        meta = records.setdefault(record_id, {})
        if key is not None:
            meta[key] = (
                bool(boolean)
                if boolean is not None
                else next((v for v in (text, integer, real) if v is not None), None)
            )
    _replay_log(conn, segment, collection_id, records)
    return records


def _replay_log(conn: sqlite3.Connection, segment: str, collection_id: str, records: dict[str, dict[str, Any]]) -> None:
    """Apply the collection's logged writes past the segment's last applied one, as Chroma would have."""
    row = conn.execute("SELECT seq_id FROM max_seq_id WHERE segment_id = ?", (segment,)).fetchone()
    applied = 0 if row is None else row[0] if isinstance(row[0], int) else int.from_bytes(row[0], "big")
    pending = conn.execute(
        "SELECT operation, id, metadata FROM embeddings_queue WHERE topic LIKE ? AND seq_id > ? ORDER BY seq_id",
        (f"%/{collection_id}", applied),
    )
    for operation, record_id, metadata in pending:
        if operation == _DELETE:
            records.pop(record_id, None)
            continue
        values = json.loads(metadata) if metadata else {}
        if operation == _ADD or record_id not in records:
            if operation == _UPDATE:
                continue  # an update of a record that does not exist changes nothing
            records[record_id] = {}
        merged = records[record_id]
        for key, value in values.items():  # an upsert or update keeps the keys it is not given; None removes one
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value


def read_articles(path: Path, collection: str) -> Recovered:
    """Every article record of index `collection` in the database at `path`, rebuilt from its rows.

    On a database whose rows are intact, `changed` and `lost` are empty.
    """
    db = database_file(path)
    recovered = Recovered()
    conn = _connect(db)
    try:
        for article_id, meta in _rows(conn, f"{collection}-articles").items():
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
