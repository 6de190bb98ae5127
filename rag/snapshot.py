"""What a replica holds in memory about one version of the index: a few numbers per chunk, no text.

A snapshot keeps, per visible chunk, its id, its article, source and date as small integer columns (about 70
bytes a chunk: 70 MB at a million), every article's record, and its view of the lexical index (`rag.lexical`,
on the replica's disk). Passage vectors stay in Chroma, whose HNSW index searches them. Texts, sentence spans,
sentence vectors and terms are read from the store for the retrieved chunks only (`Passages`), through a
bounded cache keyed by chunk id: ids derive from an article version's content, so a cached chunk never goes
stale, and the cache outlives snapshots.

A reload reads only what changed: the articles whose version differs from the previous snapshot's (found from
the store's change log, or from every record when the log cannot say), and only their chunks' rows.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from rag.lexical import LexicalDoc, LexicalIndex, LexicalView, Moved, chunk_key, passage_terms
from rag.models import ArticleRecord, Chunk, Copy, Filters
from rag.storage import ChromaStore, ChunkRow, StoredChunk
from rag.syndication import copies_by_original
from rag.text import terms

log = logging.getLogger("newsrag.snapshot")

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """Values made on first use, at most `cap` of them: a full cache starts over (what questions read again
    comes back at once; an LRU's bookkeeping would cost more than remaking the few that fall out)."""

    __slots__ = ("_cap", "_values")

    def __init__(self, cap: int) -> None:
        self._cap = max(cap, 1)
        self._values: dict[K, V] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        found = self._values.get(key)
        if found is None:
            found = make()
            self.put(key, found)
        return found

    def peek(self, key: K) -> V | None:
        return self._values.get(key)

    def put(self, key: K, value: V) -> None:
        if len(self._values) >= self._cap:
            self._values.clear()
        self._values[key] = value

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True, slots=True)
class Sentences:
    """A retrieved chunk as the stages after retrieval read it: the chunk (text, spans), each sentence's stored
    vector and terms, and the terms of the whole passage."""

    chunk: Chunk
    vectors: np.ndarray  # read-only, one row per sentence
    terms: list[frozenset[str]]
    passage_terms: frozenset[str]


def chunk_terms(stored: StoredChunk) -> tuple[str, ...]:
    """What BM25 indexes of a chunk: its terms as stored with it, or (stored by an older tokeniser) made again."""
    if stored.terms is not None:
        return stored.terms
    return passage_terms(stored.chunk.title, stored.chunk.text)


def _sentences(stored: StoredChunk) -> Sentences:
    chunk = stored.chunk
    vectors = stored.sentence_vectors
    vectors.setflags(write=False)  # shared by concurrent requests
    spans = [frozenset(terms(chunk.text[s.start - chunk.start : s.end - chunk.start])) for s in chunk.sentences]
    return Sentences(chunk, vectors, spans, frozenset(chunk_terms(stored)))


def _cached(cache: BoundedCache[str, V], keys: Sequence[str]) -> tuple[dict[str, V], list[str]]:
    """What `cache` holds of `keys`, and the keys it lacks (in their order)."""
    found: dict[str, V] = {}
    wanted: list[str] = []
    for key in keys:
        value = cache.peek(key)
        if value is None:
            wanted.append(key)
        else:
            found[key] = value
    return found, wanted


class Passages:
    """Chunks' texts, sentence vectors and terms, and their passage vectors, read from the store for the chunks
    asked about only, and kept in bounded caches by chunk id."""

    def __init__(self, store: ChromaStore, cached_chunks: int = 4096, cached_vectors: int = 32_768) -> None:
        self._store = store
        self._chunks: BoundedCache[str, Sentences] = BoundedCache(cached_chunks)
        self._vectors: BoundedCache[str, np.ndarray] = BoundedCache(cached_vectors)

    def read(self, chunk_ids: Sequence[str]) -> dict[str, Sentences]:
        """These chunks by id, in one store call for those not cached (ids no longer stored are left out)."""
        out, wanted = _cached(self._chunks, chunk_ids)
        if wanted:
            for chunk_id, stored in self._store.read_chunks(wanted).items():
                out[chunk_id] = made = _sentences(stored)
                self._chunks.put(chunk_id, made)
        return out

    def vectors(self, chunk_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The passage vectors of these chunks (rows in their order; zeros for one no longer stored), and which
        were found."""
        found, wanted = _cached(self._vectors, chunk_ids)
        if wanted:
            for chunk_id, vector in self._store.read_vectors(wanted).items():
                found[chunk_id] = vector
                self._vectors.put(chunk_id, vector)
        dim = next((len(v) for v in found.values()), 0)
        matrix = np.zeros((len(chunk_ids), dim), dtype=np.float32)
        present = np.zeros(len(chunk_ids), dtype=bool)
        for i, chunk_id in enumerate(chunk_ids):
            row = found.get(chunk_id)
            if row is not None:
                matrix[i] = row
                present[i] = True
        return matrix, present


class _Codes:
    """Names (articles, sources) as small integers: a column holds codes, the table their names. Codes are
    never reused within a replica's life (a deleted article's code is only unused), so columns built by
    earlier snapshots stay valid; the table is copied, not changed, for each snapshot."""

    __slots__ = ("codes", "names")

    def __init__(self, names: list[str] | None = None) -> None:
        self.names: list[str] = names or []
        self.codes: dict[str, int] = {n: i for i, n in enumerate(self.names)}

    def code(self, name: str) -> int:
        found = self.codes.get(name)
        if found is None:
            found = self.codes[name] = len(self.names)
            self.names.append(name)
        return found

    def copy(self) -> _Codes:
        return _Codes(list(self.names))


@dataclass(frozen=True, slots=True)
class _Columns:
    """One row per visible chunk: its id and key, and the codes of its article and source, and its day."""

    ids: np.ndarray  # bytes ("S"), the chunk ids
    keys: np.ndarray  # uint64, `chunk_key` of each id
    articles: np.ndarray  # int32 codes
    sources: np.ndarray  # int32 codes
    days: np.ndarray  # int32 `day_number`s; 0: undated

    @classmethod
    def of(cls, rows: Sequence[ChunkRow], articles: _Codes, sources: _Codes) -> _Columns:
        """Columns of `rows`, in their order."""
        return cls(
            np.asarray([r.id.encode() for r in rows], dtype=np.bytes_),
            np.asarray([chunk_key(r.id) for r in rows], dtype=np.uint64),
            np.asarray([articles.code(r.article_id) for r in rows], dtype=np.int32),
            np.asarray([sources.code(r.source) for r in rows], dtype=np.int32),
            np.asarray([r.day for r in rows], dtype=np.int32),
        )

    @classmethod
    def grouped(cls, parts: Sequence[_Columns], indexes: Sequence[np.ndarray]) -> _Columns:
        """`parts` (pages of rows, `indexes` their chunk numbers) as one, grouped by article in reading order."""
        if not parts:
            return _NO_COLUMNS
        width = max(p.ids.dtype.itemsize for p in parts)
        whole = _Columns(
            np.concatenate([p.ids.astype(f"S{width}") for p in parts]),
            np.concatenate([p.keys for p in parts]),
            np.concatenate([p.articles for p in parts]),
            np.concatenate([p.sources for p in parts]),
            np.concatenate([p.days for p in parts]),
        )
        return whole.select(np.lexsort((np.concatenate(indexes), whole.articles)))

    def select(self, keep: np.ndarray) -> _Columns:
        return _Columns(self.ids[keep], self.keys[keep], self.articles[keep], self.sources[keep], self.days[keep])

    def concat(self, other: _Columns) -> _Columns:
        if not len(other.ids):
            return self
        width = max(self.ids.dtype.itemsize, other.ids.dtype.itemsize, 1)
        return _Columns(
            np.concatenate([self.ids.astype(f"S{width}"), other.ids.astype(f"S{width}")]),
            np.concatenate([self.keys, other.keys]),
            np.concatenate([self.articles, other.articles]),
            np.concatenate([self.sources, other.sources]),
            np.concatenate([self.days, other.days]),
        )


_NO_COLUMNS = _Columns(
    np.zeros(0, dtype="S1"),
    np.zeros(0, dtype=np.uint64),
    np.zeros(0, dtype=np.int32),
    np.zeros(0, dtype=np.int32),
    np.zeros(0, dtype=np.int32),
)


ROWS_FILE = "rows.npz"
ROWS_FORMAT = 1  # bump when what `Snapshot.save` writes changes: an older file is then ignored


@dataclass(frozen=True, slots=True)
class _Base:
    """What a load starts from (the previous snapshot, the rows a replica saved, or nothing): the rows of the
    articles it holds, which version of each and how many rows, and every record as last read (None: read all)."""

    columns: _Columns
    articles: _Codes
    sources: _Codes
    version: Callable[[str], str | None]  # the version of an article it holds rows of (None: none)
    count: Callable[[str], int]  # how many rows of an article it holds
    held: Iterable[str]  # the articles it may hold rows of
    records: dict[str, ArticleRecord] | None

    @classmethod
    def empty(cls) -> _Base:
        return cls(_NO_COLUMNS, _Codes(), _Codes(), lambda _: None, lambda _: 0, (), None)

    @classmethod
    def of(cls, previous: Snapshot) -> _Base:
        return cls(
            previous.columns,
            previous.article_codes.copy(),
            previous.source_codes.copy(),
            previous.version,
            lambda a: len(previous.article_rows(a)),
            previous.records,
            previous.records,
        )

    @classmethod
    def saved(cls, folder: Path | None) -> _Base | None:
        """The rows a replica saved in `folder` (None: none, or unreadable, or of another format)."""
        path = folder / ROWS_FILE if folder is not None else None
        if path is None or not path.is_file():
            return None
        try:
            with path.open("rb") as handle, np.load(handle, allow_pickle=False) as saved:
                if int(saved["format"]) != ROWS_FORMAT:
                    raise ValueError(f"format {int(saved['format'])}")
                columns = _Columns(saved["ids"], saved["keys"], saved["articles"], saved["sources"], saved["days"])
                articles = _Codes([str(n) for n in saved["article_names"]])
                sources = _Codes([str(n) for n in saved["source_names"]])
                versions = dict(zip(saved["held"].tolist(), saved["versions"].tolist(), strict=True))
            rows = len(columns.ids)
            if any(len(c) != rows for c in (columns.keys, columns.articles, columns.sources, columns.days)) or (
                rows
                and (
                    int(columns.articles.max()) >= len(articles.names)
                    or int(columns.sources.max()) >= len(sources.names)
                    or int(min(columns.articles.min(), columns.sources.min())) < 0
                )
            ):
                raise ValueError("columns of different lengths, or codes without names")
        except Exception as exc:  # a truncated or foreign file: whatever numpy or zipfile raise
            log.warning("%s is not used (%s): every chunk is read", path, exc)
            return None
        counts = np.bincount(columns.articles, minlength=len(articles.names))

        def count(article_id: str) -> int:
            code = articles.codes.get(article_id)
            return 0 if code is None else int(counts[code])

        return cls(columns, articles, sources, versions.get, count, list(versions), None)


@dataclass(frozen=True, slots=True, eq=False)
class Snapshot:
    """What a replica holds in memory about one version of the index (see the module's docstring)."""

    token: str
    records: dict[str, ArticleRecord]  # every article's record, copies included
    columns: _Columns
    article_codes: _Codes
    source_codes: _Codes
    lexical: LexicalView
    passages: Passages
    copies: dict[str, tuple[Copy, ...]] = field(default_factory=dict)  # kept article id -> other outlets' copies
    changed: tuple[str, ...] = ()  # articles whose version is new in this snapshot (all of them in a first load)
    cached_articles: int = 512
    _key_order: np.ndarray = field(init=False, repr=False)
    _sorted_keys: np.ndarray = field(init=False, repr=False)
    _article_starts: np.ndarray = field(init=False, repr=False)
    _article_ends: np.ndarray = field(init=False, repr=False)
    _article_terms: BoundedCache[str, frozenset[str]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        keys = self.columns.keys
        order = np.argsort(keys, kind="stable")
        object.__setattr__(self, "_key_order", order)
        object.__setattr__(self, "_sorted_keys", keys[order])
        # rows are grouped by article, in no order of codes: an article's rows are starts[code] .. ends[code]
        articles = self.columns.articles
        starts = np.zeros(len(self.article_codes.names), dtype=np.int64)
        ends = np.zeros(len(self.article_codes.names), dtype=np.int64)
        if len(articles):
            change = np.flatnonzero(np.r_[True, articles[1:] != articles[:-1]])
            starts[articles[change]] = change
            ends[articles[change]] = np.r_[change[1:], len(articles)]
        object.__setattr__(self, "_article_starts", starts)
        object.__setattr__(self, "_article_ends", ends)
        object.__setattr__(self, "_article_terms", BoundedCache(self.cached_articles))

    # -- what it holds ----------------------------------------------------------------------

    def __len__(self) -> int:
        """How many chunks are visible."""
        return len(self.columns.ids)

    @property
    def article_count(self) -> int:
        """How many articles have visible chunks."""
        articles = self.columns.articles
        return int(np.count_nonzero(np.r_[True, articles[1:] != articles[:-1]])) if len(articles) else 0

    def chunk_id(self, row: int) -> str:
        return bytes(self.columns.ids[row]).decode()

    def article_of(self, row: int) -> str:
        return self.article_codes.names[int(self.columns.articles[row])]

    def rows_of_keys(self, keys: Sequence[int]) -> np.ndarray:
        """The rows of the chunks with these keys (`chunk_key`), -1 for a key no visible chunk has."""
        wanted = np.asarray(keys, dtype=np.uint64)
        at = np.searchsorted(self._sorted_keys, wanted)
        inside = at < len(self._sorted_keys)
        hit = np.zeros(len(wanted), dtype=bool)
        hit[inside] = self._sorted_keys[at[inside]] == wanted[inside]
        out = np.full(len(wanted), -1, dtype=np.int64)
        out[hit] = self._key_order[at[hit]]
        return out

    def rows_of_ids(self, chunk_ids: Sequence[str]) -> list[int]:
        """The rows of these chunks, -1 for one not in this snapshot (an invisible version, or not loaded yet)."""
        rows = self.rows_of_keys([chunk_key(i) for i in chunk_ids])
        return [int(r) if r >= 0 and self.chunk_id(int(r)) == i else -1 for r, i in zip(rows, chunk_ids, strict=True)]

    def row_of(self, chunk_id: str) -> int | None:
        """The row of a visible chunk (None: not in this snapshot)."""
        row = int(self.rows_of_keys([chunk_key(chunk_id)])[0])
        return row if row >= 0 and self.chunk_id(row) == chunk_id else None

    def article_rows(self, article_id: str) -> range:
        code = self.article_codes.codes.get(article_id)
        if code is None:
            return range(0)
        return range(int(self._article_starts[code]), int(self._article_ends[code]))

    # -- reading the retrieved chunks -------------------------------------------------------

    def read(self, rows: Sequence[int]) -> dict[int, Sentences]:
        """The chunks at these rows, text and sentences, by row (a chunk the store no longer has is left out)."""
        ids = {row: self.chunk_id(row) for row in rows}
        found = self.passages.read(list(ids.values()))
        return {row: found[i] for row, i in ids.items() if i in found}

    def sentences(self, chunk_id: str) -> Sentences | None:
        """The sentence vectors and terms of a chunk of this snapshot (None: not in it)."""
        if self.row_of(chunk_id) is None:
            return None
        return self.passages.read([chunk_id]).get(chunk_id)

    def article_terms(self, article_id: str) -> frozenset[str]:
        """The distinct terms of an article's visible chunks (empty for one not in the snapshot), read when
        first asked for and kept for the few a question touches."""
        record = self.records.get(article_id)
        if record is None:
            return frozenset()
        key = f"{article_id}\x00{record.content_hash}"

        def make() -> frozenset[str]:
            read = self.read(list(self.article_rows(article_id)))
            return frozenset(t for s in read.values() for t in s.passage_terms)

        return self._article_terms.get(key, make)

    # -- search -----------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[int]:
        """Exact nearest chunks among those `mask` keeps (None: all), best first: for small filtered subsets,
        whose passage vectors are read from the store (and cached)."""
        rows = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
        if not len(rows):
            return []
        matrix, present = self.passages.vectors([self.chunk_id(int(r)) for r in rows])
        rows, matrix = rows[present], matrix[present]
        if not len(rows):
            return []
        sims = matrix @ vector
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        best = top[np.argsort(-sims[top], kind="stable")]
        return [int(i) for i in rows[best]]

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Which chunks pass `filters` (None: all of them), written from `Filters.conditions`."""
        if filters is None or filters.empty:
            return None
        cols = self.columns
        keep = np.ones(len(self), dtype=bool)
        for c in filters.conditions():
            if isinstance(c.value, tuple):
                table, column = (
                    (self.source_codes, cols.sources) if c.field == "source" else (self.article_codes, cols.articles)
                )
                codes = [table.codes[v] for v in c.value if v in table.codes]
                keep &= np.isin(column, codes)
            else:  # undated chunks (day 0) fail every date condition, unless it lets them through
                days = cols.days
                within = (days >= c.value) if c.op == "gte" else (days <= c.value)
                keep &= ((days > 0) & within) | (c.or_undated & (days == 0))
        return keep

    # -- loading ----------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        store: ChromaStore,
        token: str,
        previous: Snapshot | None,
        passages: Passages,
        lexical: LexicalIndex,
        changes: Iterable[str] | None = None,
        cached_articles: int = 512,
        reread: frozenset[str] = frozenset(),
    ) -> Snapshot:
        """The store's visible chunks as of `token`. With a `previous` snapshot only the articles whose version
        changed are read: those `changes` names (articles written or deleted since `previous`, from the store's
        change log), or, without it, those whose record differs; `reread` are read whatever they differ in.
        `lexical` is brought up to date on the way."""
        base = _Base.of(previous) if previous is not None else _Base.saved(lexical.path) or _Base.empty()

        def differs(record: ArticleRecord) -> bool:  # the base lacks this version, or some of its rows
            return base.version(record.id) != record.content_hash or base.count(record.id) != record.chunk_count

        if changes is None or base.records is None:
            records = {a: _lean(r) for a, r in store.article_records().items()}
            touched = {a for a, r in records.items() if differs(r)}
            touched |= {a for a in base.held if a not in records}
        else:
            named = sorted(set(changes) | reread)
            records = dict(base.records)
            found = store.records_of(named) if named else {}
            for article_id in named:
                if article_id in found:
                    records[article_id] = _lean(found[article_id])
                else:
                    records.pop(article_id, None)
            # the log's overlap names writes already loaded: only what differs is read again
            touched = {a for a in named if (a in found and differs(found[a])) or (a not in found and a in base.records)}
        want = {a: r.content_hash for a, r in records.items() if r.chunk_count}
        missing = lexical.missing(want)
        touched |= missing | reread  # the lexical index needs their chunks: read them too
        changed = sorted(a for a in touched if a in records and records[a].chunk_count)
        read: list[str] | None = changed
        if len(changed) * 2 > len(want):  # most of the index: one scan of every chunk beats reading by article
            kept, read, articles, sources = _NO_COLUMNS, None, _Codes(), _Codes()  # codes start afresh too
        else:
            articles, sources = base.articles, base.sources
            codes = [articles.codes[a] for a in touched if a in articles.codes]
            kept = base.columns.select(~np.isin(base.columns.articles, codes)) if codes else base.columns
        parts: list[_Columns] = []
        order: list[np.ndarray] = []

        def pages() -> Iterator[list[LexicalDoc]]:
            if read is not None and not read:
                return
            for page in store.chunk_rows(records, read):
                parts.append(_Columns.of(page, articles, sources))
                order.append(np.asarray([r.index for r in page], dtype=np.int64))
                yield _lexical_docs([r for r in page if r.article_id in missing], store)

        # The view maps hits to the rows of the snapshot that is built from what the sync reads on its way.
        rows_of: list[Callable[[Sequence[int]], np.ndarray]] = []
        try:
            view = lexical.sync(want, (d for page in pages() for d in page), lambda keys: rows_of[0](keys))
        except Moved:  # the lexical index moved to memory: it needs every article's chunks
            return cls.load(store, token, None, passages, lexical, None, cached_articles)
        columns = kept.concat(_Columns.grouped(parts, order))
        snapshot = cls(
            token=token,
            records=records,
            columns=columns,
            article_codes=articles,
            source_codes=sources,
            lexical=view,
            passages=passages,
            copies=copies_by_original(records),
            changed=tuple(changed),
            cached_articles=cached_articles,
        )
        rows_of.append(snapshot.rows_of_keys)
        if read is None and not reread:
            # Chroma pages by offset: a delete during the scan (another writer replacing a version) moves the pages,
            # and skips rows. Whatever came out short is read again, by article.
            short = frozenset(a for a, r in records.items() if r.chunk_count and snapshot.count(a) < r.chunk_count)
            if short:
                log.info("%d articles came out short of a full read: read again", len(short))
                lexical.forget(short)
                return cls.load(store, token, snapshot, passages, lexical, (), cached_articles, short)
        return snapshot

    def count(self, article_id: str) -> int:
        """How many rows of an article this snapshot holds."""
        return len(self.article_rows(article_id))

    def save(self, folder: Path) -> None:
        """Write what this snapshot holds of each chunk to `folder` (the replica's lexical index folder), so that
        the next start reads only the articles changed since, not every chunk. Written whole or not at all."""
        cols = self.columns
        held = [a for a in self.records if self.article_rows(a)]
        tmp = folder / f"{ROWS_FILE}.tmp"
        with tmp.open("wb") as handle:
            np.savez(
                handle,
                format=np.asarray(ROWS_FORMAT),
                ids=cols.ids,
                keys=cols.keys,
                articles=cols.articles,
                sources=cols.sources,
                days=cols.days,
                article_names=np.asarray(self.article_codes.names, dtype=np.str_),
                source_names=np.asarray(self.source_codes.names, dtype=np.str_),
                held=np.asarray(held, dtype=np.str_),
                versions=np.asarray([self.records[a].content_hash for a in held], dtype=np.str_),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / ROWS_FILE)

    def version(self, article_id: str) -> str | None:
        """The version of an article this snapshot holds chunks of (None: it holds none)."""
        record = self.records.get(article_id)
        return record.content_hash if record is not None and self.article_rows(article_id) else None


def _lexical_docs(rows: Sequence[ChunkRow], store: ChromaStore) -> list[LexicalDoc]:
    """The lexical index's documents of these rows; rows stored by another tokeniser are read (one call) and
    tokenised again."""
    stale = [r.id for r in rows if r.terms is None]
    texts = store.read_chunks(stale) if stale else {}
    out = []
    for row in rows:
        found = row.terms
        if found is None:
            stored = texts.get(row.id)
            found = " ".join(chunk_terms(stored)) if stored is not None else ""
        out.append(LexicalDoc(chunk_key(row.id), row.article_id, row.source, row.day, found))
    return out


def _lean(record: ArticleRecord) -> ArticleRecord:
    """A record as a snapshot keeps it: without the copy signature (the indexer's, hundreds of bytes each)."""
    return replace(record, signature=None) if record.signature else record
