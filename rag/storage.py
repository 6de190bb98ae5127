"""Storage: chunks, article records and a change token in Chroma (embedded or a Chroma server).

Chroma's default embedding function downloads a model at run time, so we always pass vectors
and create collections with `embedding_function=None`.

An article becomes visible in one step. Its new chunks are written first (content-derived ids,
so a retry writes the same rows), then its record in the articles collection, which names the
version (`content_hash`) that counts; only then are the chunks of the version that record replaced
deleted: that version alone, never "every other version", because another writer's newer version may
be landing at the same moment. Readers ignore chunks whose hash differs from their article's record,
so a crash at any point leaves either the old or the new version visible, never half of one and never
both. Chunks of versions no record names (a crash, or the loser of two writers racing) are invisible and
are removed once they are older than `STALE_AFTER_SECONDS` (`stale_chunks`, `repair`); a record whose
chunks are missing is found by `missing_chunks` and written again by the indexer.
"""

from __future__ import annotations

import base64
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from threading import Lock
from typing import Any

import numpy as np

from rag.deadlines import Bounded, StoreGate
from rag.disk import DiskGuard, server_disk_full
from rag.errors import ConfigError, DocumentNotFound, InsufficientStorage, RagError, StoreUnavailable
from rag.lexical import TERMS_VERSION, passage_terms
from rag.models import Article, ArticleRecord, Chunk, Filters, Span, day_number

_PAGE = 2000
_WRITE_CHUNKS = 1000  # chunks per upsert: well under Chroma's largest batch
# A chunk no record names is either left over (a crash, a lost race) or part of a write still landing (its
# chunks go in before its record): only one this old is left over for sure (RAG_STALE_CHUNK_SECONDS).
STALE_AFTER_SECONDS = 300.0
STORE_TIMEOUT_SECONDS = 10.0
CHANGE_LOG_SECONDS = 3600.0  # how long the change log remembers a write (RAG_CHANGE_LOG_SECONDS)

ArticleWrite = tuple["Article", Sequence["Chunk"], np.ndarray, Sequence[np.ndarray]]
_GENERATION_ID = "generation"
_MODEL_ID = "model"
_PRUNED_ID = "changes-pruned"


@dataclass(frozen=True, slots=True)
class Audit:
    """What `ChromaStore.audit` found: stale chunks removed, and records whose chunks are missing."""

    removed: int
    missing: list[str]
    young: list[str] = field(default_factory=list)  # articles with leftover chunks not yet stale: audit again later


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back from the store, with its sentence vectors.

    The vectors stay in their stored int8 form (`encode_vectors`, 4x smaller than float32) until
    asked for: every replica holds every chunk, and only the few retrieved ones are ever read.
    """

    chunk: Chunk
    vectors_blob: bytes
    terms: tuple[str, ...] | None = None  # its BM25 terms as stored (None: stored by another tokeniser)

    @property
    def sentence_vectors(self) -> np.ndarray:
        """float32, one L2-normalised row per sentence of the chunk."""
        return _decode_raw(self.vectors_blob)


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """What a replica keeps in memory of one visible chunk: who it is and what filters read, no text.
    `terms`: its BM25 terms as stored, space-separated (None: stored by another tokeniser; `read_chunks` has
    the text to make them again)."""

    id: str
    article_id: str
    index: int
    source: str
    day: int  # `day_number` of its article's date; 0: undated
    terms: str | None


def _row_from_meta(chunk_id: str, meta: dict[str, Any]) -> ChunkRow:
    stored_terms = meta.get("terms") if meta.get("terms_version") == TERMS_VERSION else None
    return ChunkRow(
        chunk_id,
        str(meta["article_id"]),
        int(meta["index"]),
        str(meta.get("source") or ""),
        int(meta.get("published_day") or 0),
        stored_terms if isinstance(stored_terms, str) else None,
    )


def encode_spans(spans: Sequence[Span]) -> str:
    return ",".join(f"{s.start}:{s.end}" for s in spans)


def decode_spans(value: str) -> tuple[Span, ...]:
    if not value:
        return ()
    return tuple(Span(int(a), int(b)) for a, b in (part.split(":") for part in value.split(",")))


def encode_vectors(vectors: np.ndarray) -> str:
    """int8 with one float16 scale per row: 4x smaller than float32, cosine error below 1e-3."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.maximum(np.abs(vectors).max(axis=1), 1e-12) / 127.0
    quantised = np.round(vectors / scales[:, None]).astype(np.int8)
    header = np.asarray([vectors.shape[0], vectors.shape[1]], dtype=np.int32).tobytes()
    return base64.b64encode(header + scales.astype(np.float16).tobytes() + quantised.tobytes()).decode("ascii")


def _decode_raw(raw: bytes) -> np.ndarray:
    rows, dim = np.frombuffer(raw[:8], dtype=np.int32)
    scales = np.frombuffer(raw[8 : 8 + 2 * rows], dtype=np.float16).astype(np.float32)
    quantised = np.frombuffer(raw[8 + 2 * rows :], dtype=np.int8).reshape(rows, dim).astype(np.float32)
    vectors = quantised * scales[:, None]
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return (vectors / norms).astype(np.float32)


def _date_or_none(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) and value else None


def _chunk_metadata(chunk: Chunk, sentence_vectors: np.ndarray) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "article_id": chunk.article_id,
        "article_hash": chunk.article_hash,
        "index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "title": chunk.title,
        "source": chunk.source,
        "sentences": encode_spans(chunk.sentences),
        "sentence_vectors": encode_vectors(sentence_vectors),
        "terms": " ".join(passage_terms(chunk.title, chunk.text)),
        "terms_version": TERMS_VERSION,
        "written_at": time.time(),
    }
    # Optional keys are always written, None when absent: Chroma's upsert merges metadata, so a key left out
    # would keep the value of the version it replaces (None removes it).
    meta["published_at"] = chunk.published_at.isoformat() if chunk.published_at else None
    meta["published_day"] = day_number(chunk.published_at) if chunk.published_at else None
    meta["url"] = chunk.url or None
    return meta


def _mean_vector(vectors: np.ndarray, dim: int) -> np.ndarray:
    """An article's vector: the normalised mean of its chunks' (zeros for an empty article)."""
    if not len(vectors):
        return np.zeros(dim, dtype=np.float32)
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _upsert_chunks(
    collection: Any, chunks: Sequence[Chunk], vectors: np.ndarray, sentence_vectors: Sequence[np.ndarray]
) -> None:
    collection.upsert(
        ids=[c.id for c in chunks],
        embeddings=vectors.tolist(),
        documents=[c.text for c in chunks],
        metadatas=[_chunk_metadata(c, sv) for c, sv in zip(chunks, sentence_vectors, strict=True)],
    )


def _by_ids(collection: Any, ids: Sequence[str], include: list[str]) -> Iterator[tuple[Any, ...]]:
    """The rows with these ids, a page at a time, as (ids, *one list per `include`); ids not stored are left out."""
    for b in range(0, len(ids), _PAGE):
        got = collection.get(ids=list(ids[b : b + _PAGE]), include=include)
        yield (got["ids"], *(got[key] for key in include))


def _versions(article_col: Any, article_ids: Sequence[str]) -> dict[str, str]:
    """The version (`content_hash`) each of these articles' records names now; absent ids have no record."""
    out: dict[str, str] = {}
    for ids, metas in _by_ids(article_col, article_ids, ["metadatas"]):
        out.update({i: str(m.get("content_hash", "")) for i, m in zip(ids, metas, strict=True)})
    return out


def _new_token(meta_col: Any) -> str:
    """Move the change token, so that every replica reloads."""
    token = uuid.uuid4().hex
    meta_col.upsert(ids=[_GENERATION_ID], embeddings=[[1.0]], metadatas=[{"token": token}])
    return token


def _log_changes(meta_col: Any, article_ids: Sequence[str]) -> None:
    """Append to the change log: these articles' records were just written or deleted (see `changes_since`)."""
    now = time.time()
    for b in range(0, len(article_ids), _WRITE_CHUNKS):
        some = article_ids[b : b + _WRITE_CHUNKS]
        meta_col.upsert(
            ids=[f"change:{time.time_ns():020d}:{uuid.uuid4().hex[:8]}:{n}" for n in range(len(some))],
            embeddings=[[1.0]] * len(some),
            metadatas=[{"kind": "change", "at": now, "article_id": a} for a in some],
        )


def _delete_matching(chunk_col: Any, clauses: Sequence[dict[str, Any]]) -> None:
    """Delete the chunks that match any of `clauses` (Chroma `where` clauses), a hundred to a call."""
    for b in range(0, len(clauses), 100):
        some = clauses[b : b + 100]
        chunk_col.delete(where=some[0] if len(some) == 1 else {"$or": list(some)})


def _chunk_from_row(chunk_id: str, text: str, meta: dict[str, Any]) -> StoredChunk:
    chunk = Chunk(
        id=chunk_id,
        article_id=meta["article_id"],
        article_hash=meta["article_hash"],
        index=int(meta["index"]),
        text=text,
        start=int(meta["start"]),
        end=int(meta["end"]),
        sentences=decode_spans(meta.get("sentences", "")),
        title=meta.get("title", ""),
        source=meta.get("source", ""),
        published_at=_date_or_none(meta.get("published_at")),
        url=meta.get("url"),
    )
    stored_terms = meta.get("terms") if meta.get("terms_version") == TERMS_VERSION else None
    if not isinstance(stored_terms, str):
        stored_terms = None
    return StoredChunk(
        chunk,
        base64.b64decode(meta["sentence_vectors"]),
        None if stored_terms is None else tuple(sys.intern(t) for t in stored_terms.split()),
    )


def _article_metadata(article: Article, chunk_count: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "title": article.title,
        "source": article.source,
        "content_hash": article.content_hash,
        "chunk_count": chunk_count,
        "body": encode_spans(article.body),
        "source_start": article.source_start,
        "source_end": article.source_end,
    }
    # Always written, None when absent: an upsert keeps any key it is not given (see _chunk_metadata).
    meta["source_file"] = article.source_file or None
    meta["published_at"] = article.published_at.isoformat() if article.published_at else None
    meta["url"] = article.url or None
    meta["author"] = article.author or None
    meta["copy_of"] = article.copy_of or None
    meta["signature"] = article.signature or None
    return meta


def article_from_row(article_id: str, meta: dict[str, Any], text: str) -> Article:
    """The article an articles-collection row was written from: `_article_metadata` read backwards
    (keys it lacks read as empty). Raises ValueError for a value of the wrong form."""
    return Article(
        id=article_id,
        title=str(meta.get("title", "")),
        text=text,
        body=decode_spans(str(meta.get("body", ""))),
        source=str(meta.get("source", "")),
        source_file=meta.get("source_file"),
        source_start=int(meta.get("source_start", 0)),
        source_end=int(meta.get("source_end", 0)),
        published_at=_date_or_none(meta.get("published_at")),
        url=meta.get("url"),
        author=meta.get("author"),
        copy_of=meta.get("copy_of"),
        signature=meta.get("signature"),
    )


def _record_from_row(article_id: str, meta: dict[str, Any], text: str | None = None) -> ArticleRecord:
    return ArticleRecord(
        id=article_id,
        title=meta.get("title", ""),
        source=meta.get("source", ""),
        source_file=meta.get("source_file"),
        published_at=_date_or_none(meta.get("published_at")),
        url=meta.get("url"),
        content_hash=meta.get("content_hash", ""),
        chunk_count=int(meta.get("chunk_count", 0)),
        text=text,
        author=meta.get("author"),
        copy_of=meta.get("copy_of"),
        signature=meta.get("signature"),
    )


def where_clause(filters: Filters | None) -> dict[str, Any] | None:
    """The Chroma `where` for retrieval filters (None when unfiltered), written from `Filters.conditions`. A
    condition that lets undated chunks through is left out (Chroma cannot match a missing key): the caller
    applies the snapshot's mask to what comes back."""
    if filters is None or filters.empty:
        return None
    terms: list[dict[str, Any]] = [
        {c.field: {"$in": list(c.value)} if isinstance(c.value, tuple) else {f"${c.op}": c.value}}
        for c in filters.conditions()
        if not c.or_undated
    ]
    if not terms:
        return None
    return terms[0] if len(terms) == 1 else {"$and": terms}


class ChromaStore:
    """The three collections of one index: `<name>-chunks`, `<name>-articles`, `<name>-meta`.

    The client is created on first use and again after a failure, so a Chroma server that was
    down at start-up or restarted later is picked up without restarting the service.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        name: str,
        dim: int,
        model: str = "",
        stale_after: float = STALE_AFTER_SECONDS,
        gate: StoreGate | None = None,
        disk: DiskGuard | None = None,
        change_log_seconds: float = CHANGE_LOG_SECONDS,
    ) -> None:
        """`model` names the embedding model the vectors come from: an index built with another one is
        refused (its vectors mean nothing to this model's questions) instead of silently mixed into.

        Every call runs through `gate` (deadlines, its own threads). `disk` guards an embedded index's disk: with
        one, the store is embedded and is never reopened after a failure (reopening creates collections, which
        on a full disk can hang the process); without one it is a server, reopened after any failure."""
        self._factory = client_factory
        self.stale_after = stale_after
        self.change_log_seconds = change_log_seconds
        self.gate = gate or StoreGate(STORE_TIMEOUT_SECONDS)
        self.disk = disk
        self._name = name
        self._dim = dim
        self._model = model
        self._lock = Lock()
        self._cols: tuple[Any, Any, Any] | None = None
        self._token = ""  # the last change token read
        # article id -> (version, when) a failed write of this process left chunks of that version
        self._abandoned: dict[str, tuple[str, float]] = {}
        self.gate.probe_with(self._probe)

    @contextmanager
    def _using(self, write: bool = False, lookup: bool = False) -> Iterator[tuple[Any, Any, Any]]:
        """The collections. `lookup`: a question's reads (a nearest-neighbour query, chunks by id), which go on
        while the disk is full: they only read what is open already (SQLite reads, the loaded HNSW index)."""
        if self.disk is not None and not lookup:
            self.disk.check_write() if write else self.disk.check_read()
        try:
            with self._lock:
                if self._cols is None:
                    create = self.disk is None or self.disk.enough()
                    self._cols = self.gate.call(self._open, create)
                cols = self._cols
            yield tuple(Bounded(c, self.gate) for c in cols)  # type: ignore[misc]
        except RagError:
            raise
        except Exception as exc:  # any failure of the client means the store failed
            if self.disk is None:
                with self._lock:
                    self._cols = None
                if server_disk_full(exc):
                    raise InsufficientStorage(f"the Chroma server's disk is full: {type(exc).__name__}: {exc}") from exc
            elif self.disk.is_full(exc):
                raise self.disk.failed() from exc
            raise StoreUnavailable(f"the vector store is unavailable: {type(exc).__name__}: {exc}") from exc

    def _probe(self) -> None:
        """Whether the store answers, called on the gate's pool while it counts as down."""
        cols = self._cols
        if cols is None:
            self._factory().heartbeat()
        else:
            cols[0].count()

    def _open(self, create: bool) -> tuple[Any, Any, Any]:
        """The three collections, created if missing when `create` (else only opened: nothing is written)."""
        client = self._factory()
        names = [f"{self._name}-{kind}" for kind in ("chunks", "articles", "meta")]
        if create:
            chunks, articles, meta = (
                client.get_or_create_collection(n, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
                for n in names
            )
        else:
            try:
                chunks, articles, meta = (client.get_collection(n, embedding_function=None) for n in names)
            except Exception as exc:
                raise InsufficientStorage(
                    f"the index cannot be created: the disk holding it has too little free space ({exc})"
                ) from exc
        self._check_model(chunks, articles, meta, record=create)
        return chunks, articles, meta

    def _check_model(self, chunk_col: Any, _: Any, meta_col: Any, record: bool = True) -> None:
        """Record which model (and dimension) this index's vectors come from, or refuse another one."""
        want = {"model": self._model, "dim": self._dim}
        got = meta_col.get(ids=[_MODEL_ID], include=["metadatas"]).get("metadatas") or []
        if got:
            have = {"model": got[0].get("model", ""), "dim": int(got[0].get("dim", 0))}
            if have != want:
                raise ConfigError(
                    f"the index {self._name!r} holds vectors of the embedding model {have['model']!r} "
                    f"({have['dim']} dimensions), but this service embeds with {self._model!r} "
                    f"({self._dim} dimensions): use another RAG_COLLECTION or RAG_DATA_DIR for this model "
                    "(and ingest into it), or go back to the index's model"
                )
            return
        if chunk_col.count():
            sample = chunk_col.get(limit=1, include=["embeddings"])["embeddings"]
            if len(sample) and len(sample[0]) != self._dim:
                raise ConfigError(
                    f"the index {self._name!r} holds {len(sample[0])}-dimensional vectors, but this service "
                    f"embeds with {self._model!r} ({self._dim} dimensions): use another RAG_COLLECTION or "
                    "RAG_DATA_DIR for this model"
                )
        # A new index, or one written before models were recorded: it is taken to be this model's.
        if record:
            meta_col.upsert(ids=[_MODEL_ID], embeddings=[[1.0]], metadatas=[want])

    def disk_full(self) -> str | None:
        """Why writes are refused for want of disk space (None: they are not)."""
        if self.disk is None:
            return None
        try:
            self.disk.check_write()
        except InsufficientStorage as exc:
            return str(exc)
        return None

    def check_writable(self) -> None:
        """Raise InsufficientStorage now, before a write embeds anything, if it would be refused."""
        if self.disk is not None:
            self.disk.check_write()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        with self._using() as (chunks, _, _):
            chunks.count()

    # -- writes ---------------------------------------------------------------------------

    def write_article(
        self,
        article: Article,
        chunks: Sequence[Chunk],
        vectors: np.ndarray,
        sentence_vectors: Sequence[np.ndarray],
    ) -> None:
        """Make `article` (with these chunks) the visible version, atomically as seen by readers."""
        self.write_articles([(article, chunks, vectors, sentence_vectors)])

    def write_articles(self, items: Sequence[ArticleWrite]) -> None:
        """`write_article` for many articles in a constant number of store calls.

        Each article still becomes visible in one step: all new chunks are written before any
        record, and old versions are deleted only after the records name the new ones.
        """
        items = list(items)
        if not items:
            return
        with self._using(write=True) as cols:
            self._drop_abandoned(*cols)
            try:
                self._write(items, *cols)
            except BaseException:
                failed_at = time.time()
                with self._lock:  # its chunks may be in without its record: removed by the next write or upkeep
                    self._abandoned.update({a.id: (a.content_hash, failed_at) for a, chunks, *_ in items if chunks})
                raise

    def _write(self, items: list[ArticleWrite], chunk_col: Any, article_col: Any, meta_col: Any) -> None:
        ids = [a.id for a, *_ in items]
        before = _versions(article_col, ids)  # the version each record named before this write: what it replaces
        written = [(a, c, v, sv) for a, c, v, sv in items if c]
        part: list[ArticleWrite] = []
        size = 0
        for n, item in enumerate(written):
            part.append(item)
            size += len(item[1])
            if n == len(written) - 1 or size + len(written[n + 1][1]) > _WRITE_CHUNKS:
                _upsert_chunks(
                    chunk_col,
                    [c for _, cs, _, _ in part for c in cs],
                    np.concatenate([v for _, _, v, _ in part]),
                    [x for _, _, _, svs in part for x in svs],
                )
                part, size = [], 0
        # Logged before the records land (a reader's overlap covers the gap): a record that lands late, after its
        # call's deadline, is still named by the log.
        _log_changes(meta_col, ids)
        for b in range(0, len(items), _WRITE_CHUNKS):
            records = items[b : b + _WRITE_CHUNKS]
            article_col.upsert(
                ids=[a.id for a, _, _, _ in records],
                embeddings=[_mean_vector(v, self._dim).tolist() for _, _, v, _ in records],
                documents=[a.text for a, _, _, _ in records],
                metadatas=[_article_metadata(a, len(c)) for a, c, _, _ in records],
            )
        replaced = [(a.id, before[a.id]) for a, *_ in items if before.get(a.id, a.content_hash) != a.content_hash]
        _delete_matching(chunk_col, [{"$and": [{"article_id": i}, {"article_hash": h}]} for i, h in replaced])
        # Two writers of one article that both replaced the same version: each deleted only that version's
        # chunks, so ours are still there, unless a third writer replaced ours meanwhile. Check, and put back
        # what is missing while the record names our version.
        current = _versions(article_col, ids)
        if written:
            expected = [c.id for _, chunks, _, _ in written for c in chunks]
            present = {i for ids, *_ in _by_ids(chunk_col, expected, []) for i in ids}
            for article, chunks, vectors, sentence_vectors in written:
                if current.get(article.id) == article.content_hash and any(c.id not in present for c in chunks):
                    _upsert_chunks(chunk_col, chunks, vectors, sentence_vectors)
        # The loser of a race removes its own version; what older writes left behind goes once it is stale.
        lost = [
            {"$and": [{"article_id": a.id}, {"article_hash": a.content_hash}]}
            for a, *_ in items
            if current.get(a.id) != a.content_hash
        ]
        cutoff = time.time() - self.stale_after
        old = [
            {"$and": [{"article_id": i}, {"article_hash": {"$ne": h}}, {"written_at": {"$lt": cutoff}}]}
            for i, h in current.items()
        ]
        _delete_matching(chunk_col, lost + old)

    def drop_abandoned(self) -> int:
        """Remove the chunks this process's failed writes left, where no record names their version (the next
        write does this too); returns how many versions were dropped."""
        if not self._abandoned:
            return 0
        with self._using() as cols:
            return self._drop_abandoned(*cols)

    def _drop_abandoned(self, chunk_col: Any, article_col: Any, meta_col: Any) -> int:
        """Only chunks written before the failure go (a retry of the same version writes the same ids again, later),
        and only once a call of the failed write that outlived its deadline has had time to land."""
        settled = time.time() - self.gate.timeout_seconds - 1.0
        with self._lock:
            pending = {i: v for i, v in self._abandoned.items() if v[1] <= settled}
        if not pending:
            return 0
        current = _versions(article_col, list(pending))
        gone = [
            {"$and": [{"article_id": i}, {"article_hash": h}, {"written_at": {"$lte": at}}]}
            for i, (h, at) in pending.items()
            if current.get(i) != h
        ]
        _delete_matching(chunk_col, gone)
        landed = [i for i, (h, _) in pending.items() if current.get(i) == h]
        if landed:  # the write failed for its caller, but its records landed after all: announce them
            _log_changes(meta_col, landed)
            _new_token(meta_col)
        with self._lock:
            for i, v in pending.items():
                if self._abandoned.get(i) == v:
                    del self._abandoned[i]
        return len(gone)

    def delete_article(self, article_id: str) -> None:
        """Remove an article: its record first (it disappears at once), then its chunks."""
        with self._using() as (chunk_col, article_col, meta_col):
            if not article_col.get(ids=[article_id], include=[])["ids"]:
                raise DocumentNotFound(f"no article with id {article_id!r}")
            article_col.delete(ids=[article_id])
            _log_changes(meta_col, [article_id])
            chunk_col.delete(where={"article_id": article_id})

    def set_copy_of(self, article_ids: Sequence[str], original: str) -> None:
        """Record `article_ids` as copies of `original` (their records only; copies have no chunks)."""
        if not article_ids:
            return
        with self._using(write=True) as (_, article_col, meta_col):
            article_col.update(ids=list(article_ids), metadatas=[{"copy_of": original} for _ in article_ids])
            _log_changes(meta_col, article_ids)

    def touch(self) -> str:
        """Record that the index changed, so every replica reloads its lexical index."""
        with self._using() as (_, _, meta_col):
            return _new_token(meta_col)

    def repair(self) -> int:
        """Delete chunks no article record vouches for (left by a crash mid-write or a lost race) once they are
        stale; returns how many."""
        return self.audit(self.article_records()).removed

    def audit(self, records: dict[str, ArticleRecord], article_ids: Sequence[str] | None = None) -> Audit:
        """Check the chunks of `article_ids` (all: None) against their records: delete the stale ones no record
        names, and name the records whose version has fewer chunks than it should (lost: written again by
        the indexer)."""
        cutoff = time.time() - self.stale_after
        seen: dict[str, int] = {}
        stale: list[str] = []
        young: set[str] = set()
        with self._using() as (chunk_col, _, _):
            if article_ids is None:
                pages: Iterator[tuple[Any, ...]] = self._pages(chunk_col, include=["metadatas"])
            else:
                pages = self._pages_of(chunk_col, list(article_ids), ["metadatas"])
            for ids, metas in pages:
                for chunk_id, meta in zip(ids, metas, strict=True):
                    record = records.get(meta["article_id"])
                    if record is not None and record.content_hash == meta["article_hash"]:
                        seen[record.id] = seen.get(record.id, 0) + 1
                    elif float(meta.get("written_at") or 0.0) < cutoff:
                        stale.append(chunk_id)
                    else:
                        young.add(str(meta["article_id"]))
            for b in range(0, len(stale), _PAGE):
                chunk_col.delete(ids=stale[b : b + _PAGE])
        checked = records.values() if article_ids is None else [records[i] for i in article_ids if i in records]
        missing = [r.id for r in checked if seen.get(r.id, 0) < r.chunk_count]
        return Audit(removed=len(stale), missing=missing, young=sorted(young))

    # -- reads ----------------------------------------------------------------------------

    def generation(self) -> str:
        """The change token ('' for an index never written to). While an embedded index's disk is full after a
        failed write nothing can change it, and reading it could hang: the last token read is the answer."""
        if self.disk is not None and self.disk.full and not self.disk.enough():
            return self._token
        with self._using() as (_, _, meta_col):
            got = meta_col.get(ids=[_GENERATION_ID], include=["metadatas"])
        metas = got.get("metadatas") or []
        self._token = str(metas[0].get("token", "")) if metas else ""
        return self._token

    def changes_since(self, since: float) -> list[str] | None:
        """The articles whose records were written or deleted at or after `since` (a time.time() by the writers'
        clocks), as the change log says: one small read, however large the index. None when the log no longer
        reaches back that far (a replica pruned it): the reader compares every record instead."""
        with self._using() as (_, _, meta_col):
            pruned = meta_col.get(ids=[_PRUNED_ID], include=["metadatas"])["metadatas"]
            if pruned and float(pruned[0].get("before", 0.0)) > since:
                return None
            got = meta_col.get(where={"$and": [{"kind": "change"}, {"at": {"$gte": since}}]}, include=["metadatas"])
        return sorted({str(m["article_id"]) for m in got["metadatas"]})

    def prune_changes(self) -> None:
        """Forget changes older than `change_log_seconds` (upkeep calls this), first recording how far back the log
        still reaches, so that a replica keeping a longer log sees it was cut."""
        cutoff = time.time() - self.change_log_seconds
        with self._using() as (_, _, meta_col):
            pruned = meta_col.get(ids=[_PRUNED_ID], include=["metadatas"])["metadatas"]
            if not pruned or float(pruned[0].get("before", 0.0)) < cutoff:
                meta_col.upsert(ids=[_PRUNED_ID], embeddings=[[1.0]], metadatas=[{"kind": "pruned", "before": cutoff}])
            meta_col.delete(where={"$and": [{"kind": "change"}, {"at": {"$lt": cutoff}}]})

    def records_of(self, article_ids: Sequence[str]) -> dict[str, ArticleRecord]:
        """The records (no text) of these articles, by id; ids with no record are left out."""
        out: dict[str, ArticleRecord] = {}
        with self._using() as (_, article_col, _):
            for ids, metas in _by_ids(article_col, article_ids, ["metadatas"]):
                out.update({i: _record_from_row(i, m) for i, m in zip(ids, metas, strict=True)})
        return out

    def copies_of(self, article_id: str) -> dict[str, ArticleRecord]:
        """The records of the stored copies of an article (other outlets' copies folded into it), by id."""
        with self._using() as (_, article_col, _):
            got = article_col.get(where={"copy_of": article_id}, include=["metadatas"])
        return {i: _record_from_row(i, m) for i, m in zip(got["ids"], got["metadatas"], strict=True)}

    def count_chunks(self) -> int:
        with self._using() as (chunk_col, _, _):
            return int(chunk_col.count())

    def article_records(self) -> dict[str, ArticleRecord]:
        """Every article's record (no text), by id."""
        out: dict[str, ArticleRecord] = {}
        with self._using() as (_, article_col, _):
            for ids, metas in self._pages(article_col, include=["metadatas"]):
                for article_id, meta in zip(ids, metas, strict=True):
                    out[article_id] = _record_from_row(article_id, meta)
        return out

    def read_article(self, article_id: str) -> Article:
        """The article as it was written (to write it again: a promoted copy)."""
        with self._using() as (_, article_col, _):
            got = article_col.get(ids=[article_id], include=["metadatas", "documents"])
        if not got["ids"]:
            raise DocumentNotFound(f"no article with id {article_id!r}")
        return article_from_row(article_id, got["metadatas"][0], got["documents"][0])

    def chunks_of(self, article_id: str) -> list[str]:
        """The version (`article_hash`) of every stored chunk row of an article, whichever version it is."""
        with self._using() as (chunk_col, _, _):
            got = chunk_col.get(where={"article_id": article_id}, include=["metadatas"])
        return [str(m["article_hash"]) for m in got["metadatas"]]

    def get_article(self, article_id: str) -> ArticleRecord:
        with self._using() as (_, article_col, _):
            got = article_col.get(ids=[article_id], include=["metadatas", "documents"])
        if not got["ids"]:
            raise DocumentNotFound(f"no article with id {article_id!r}")
        return _record_from_row(article_id, got["metadatas"][0], got["documents"][0])

    def visible_chunks(
        self, records: dict[str, ArticleRecord] | None = None, article_ids: Sequence[str] | None = None
    ) -> list[StoredChunk]:
        """Chunks of the visible article versions (of `article_ids` only, if given), text and all, in article
        and reading order. `records` saves re-reading the article records when the caller has them. For tools
        and tests: a replica reads what it keeps of every chunk with `chunk_rows`, and texts for its hits only."""
        records = self.article_records() if records is None else records
        out: list[StoredChunk] = []
        include = ["metadatas", "documents"]
        with self._using() as (chunk_col, _, _):
            pages = (
                self._pages(chunk_col, include)
                if article_ids is None
                else self._pages_of(chunk_col, list(article_ids), include)
            )
            for ids, metas, docs in pages:
                for chunk_id, meta, doc in zip(ids, metas, docs, strict=True):
                    record = records.get(meta["article_id"])
                    if record is not None and record.content_hash == meta["article_hash"]:
                        out.append(_chunk_from_row(chunk_id, doc, meta))
        return sorted(out, key=lambda s: (s.chunk.article_id, s.chunk.index))

    def chunk_rows(
        self, records: dict[str, ArticleRecord], article_ids: Sequence[str] | None = None
    ) -> Iterator[list[ChunkRow]]:
        """What a replica keeps of each visible chunk (of `article_ids` only, if given), a page at a time, in the
        store's order: no text and no vectors, which are read for the retrieved chunks only (`read_chunks`)."""
        with self._using() as (chunk_col, _, _):
            if article_ids is None:
                pages: Iterator[tuple[Any, ...]] = self._pages(chunk_col, include=["metadatas"])
            else:
                pages = self._pages_of(chunk_col, list(article_ids), ["metadatas"])
            for ids, metas in pages:
                page = []
                for chunk_id, meta in zip(ids, metas, strict=True):
                    record = records.get(meta["article_id"])
                    if record is not None and record.content_hash == meta["article_hash"]:
                        page.append(_row_from_meta(chunk_id, meta))
                yield page

    def read_chunks(self, chunk_ids: Sequence[str]) -> dict[str, StoredChunk]:
        """These chunks, text, sentences and all, by id (ids no longer stored are left out)."""
        out: dict[str, StoredChunk] = {}
        with self._using(lookup=True) as (chunk_col, _, _):
            for ids, metas, docs in _by_ids(chunk_col, chunk_ids, ["metadatas", "documents"]):
                out.update({i: _chunk_from_row(i, d, m) for i, m, d in zip(ids, metas, docs, strict=True)})
        return out

    def read_vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """These chunks' passage vectors (float32), by id (ids no longer stored are left out)."""
        out: dict[str, np.ndarray] = {}
        with self._using(lookup=True) as (chunk_col, _, _):
            for ids, vectors in _by_ids(chunk_col, chunk_ids, ["embeddings"]):
                out.update({i: np.asarray(v, dtype=np.float32) for i, v in zip(ids, vectors, strict=True)})
        return out

    @staticmethod
    def _pages_of(collection: Any, article_ids: list[str], include: list[str]) -> Iterator[tuple[Any, ...]]:
        for b in range(0, len(article_ids), 200):
            got = collection.get(where={"article_id": {"$in": article_ids[b : b + 200]}}, include=include)
            yield (got["ids"], *(got[key] for key in include))

    def query(self, vector: np.ndarray, n: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """Nearest chunks as (chunk id, cosine similarity), best first."""
        with self._using(lookup=True) as (chunk_col, _, _):
            result = chunk_col.query(
                query_embeddings=[vector.tolist()],
                n_results=n,
                where=where_clause(filters),
                include=["distances"],
            )
        ids = result["ids"][0] if result["ids"] else []
        distances = result["distances"][0] if result.get("distances") else []
        return [(i, 1.0 - float(d)) for i, d in zip(ids, distances, strict=True)]

    @staticmethod
    def _pages(collection: Any, include: list[str]) -> Iterator[tuple[Any, ...]]:
        offset = 0
        while True:
            got = collection.get(limit=_PAGE, offset=offset, include=include)
            if not got["ids"]:
                return
            yield (got["ids"], *(got[key] for key in include))
            if len(got["ids"]) < _PAGE:
                return
            offset += _PAGE
