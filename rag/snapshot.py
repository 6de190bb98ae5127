"""What a replica holds in memory about one version of the index, and the bounded caches derived from it.

A snapshot holds the visible chunks, their passage vectors and its view of the lexical index (`rag.lexical`:
on disk, brought up to date with each snapshot loaded, searched as of that snapshot). What is derived from a chunk
on every question that reads it (its decoded sentence vectors, its sentences' terms, an article's term set) is
made on first use and kept in a bounded cache: only retrieved chunks are ever asked about, so a cache holds
the corpus's popular few. The stages after retrieval read a chunk's sentences through `sentences(chunk_id)`,
not through the snapshot's fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from rag.lexical import LexicalIndex, LexicalView, passage_terms
from rag.models import Copy, Filters, day_number
from rag.storage import ChromaStore, StoredChunk
from rag.syndication import copies_by_original
from rag.text import terms

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
            if len(self._values) >= self._cap:
                self._values.clear()
            found = self._values[key] = make()
        return found

    def __len__(self) -> int:
        return len(self._values)


def chunk_terms(stored: StoredChunk) -> tuple[str, ...]:
    """What BM25 indexes of a chunk: its terms as stored with it, or (stored by an older tokeniser)
    made again. Tokenising was half of a replica's start time."""
    if stored.terms is not None:
        return stored.terms
    return passage_terms(stored.chunk.title, stored.chunk.text)


class ChunkTerms:
    """`snapshot.chunk_terms[i]`: the distinct terms of chunk i, made when asked for.

    Only the few retrieved chunks are ever asked about, so a set per chunk (several KB each, most of
    a 100k-chunk snapshot's memory) is not kept."""

    __slots__ = ("_tokenised",)

    def __init__(self, tokenised: list[tuple[str, ...]]) -> None:
        self._tokenised = tokenised

    def __getitem__(self, index: int) -> frozenset[str]:
        return frozenset(self._tokenised[index])

    def __len__(self) -> int:
        return len(self._tokenised)


class ArticleTerms:
    """`snapshot.article_terms.get(article_id)`: the distinct terms of an article's chunks, made when
    first asked for and kept for the retrieved few (every question asks about eight articles; making
    their sets anew each time was a third of the answerer's time)."""

    __slots__ = ("_cache", "_rows", "_tokenised")

    def __init__(self, rows: dict[str, range], tokenised: list[tuple[str, ...]], cap: int) -> None:
        self._rows = rows
        self._tokenised = tokenised
        self._cache: BoundedCache[str, frozenset[str]] = BoundedCache(cap)

    def get(self, article_id: str, default: frozenset[str] = frozenset()) -> frozenset[str]:
        rows = self._rows.get(article_id)
        if rows is None:
            return default
        return self._cache.get(article_id, lambda: frozenset(term for row in rows for term in self._tokenised[row]))

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)


@dataclass(frozen=True, slots=True)
class Sentences:
    """What the stages after retrieval read of one chunk: each sentence's stored vector and terms, and the
    terms of the whole passage."""

    vectors: np.ndarray  # read-only, one row per sentence
    terms: list[frozenset[str]]
    passage_terms: frozenset[str]


def _read_only_sentence_vectors(stored: StoredChunk) -> np.ndarray:
    vectors = stored.sentence_vectors
    vectors.setflags(write=False)  # shared by concurrent requests
    return vectors


def _sentence_terms(stored: StoredChunk) -> list[frozenset[str]]:
    chunk = stored.chunk
    return [frozenset(terms(chunk.text[span.start - chunk.start : span.end - chunk.start])) for span in chunk.sentences]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a replica holds in memory about one version of the index."""

    token: str
    chunks: list[StoredChunk]
    vectors: np.ndarray
    tokenised: list[tuple[str, ...]]
    by_id: dict[str, int]
    lexical: LexicalView
    chunk_terms: ChunkTerms
    article_terms: ArticleTerms
    sources: np.ndarray
    article_ids: np.ndarray
    days: np.ndarray
    cached_chunks: int = 4096
    copies: dict[str, tuple[Copy, ...]] = field(default_factory=dict)  # kept article id -> other outlets' copies
    changed: tuple[str, ...] = ()  # articles whose version is new in this snapshot (all of them in a first load)
    _sentence_vectors: BoundedCache[int, np.ndarray] = field(init=False, repr=False)
    _sentence_terms: BoundedCache[int, list[frozenset[str]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sentence_vectors", BoundedCache(self.cached_chunks))
        object.__setattr__(self, "_sentence_terms", BoundedCache(self.cached_chunks))

    def sentence_vectors(self, index: int) -> np.ndarray:
        """Chunk `index`'s sentence vectors, decoded once per snapshot (decoding on every use took a
        fifth of a query's time)."""
        return self._sentence_vectors.get(index, lambda: _read_only_sentence_vectors(self.chunks[index]))

    def sentence_terms(self, index: int) -> list[frozenset[str]]:
        """The terms of each sentence of chunk `index`, tokenised once per snapshot (tokenising is most
        of what ranking a passage's sentences costs)."""
        return self._sentence_terms.get(index, lambda: _sentence_terms(self.chunks[index]))

    def sentences(self, chunk_id: str) -> Sentences | None:
        """The sentence vectors and terms of a chunk of this snapshot (None: not in it)."""
        index = self.by_id.get(chunk_id)
        if index is None:
            return None
        return Sentences(self.sentence_vectors(index), self.sentence_terms(index), self.chunk_terms[index])

    @classmethod
    def build(
        cls,
        token: str,
        chunks: list[StoredChunk],
        vectors: np.ndarray,
        tokenised: list[tuple[str, ...]] | None = None,
        cached_chunks: int = 4096,
        cached_articles: int = 512,
        copies: dict[str, tuple[Copy, ...]] | None = None,
        changed: tuple[str, ...] = (),
        lexical: LexicalIndex | None = None,
    ) -> Snapshot:
        """A snapshot of `chunks` (in article order) and their passage vectors (rows in the same order);
        `tokenised` (their terms, same order) saves re-tokenising. `lexical` (default: a new one in memory) is
        brought up to date with `chunks`: only the articles whose version it lacks are indexed."""
        if tokenised is None:
            tokenised = [chunk_terms(s) for s in chunks]
        rows: dict[str, range] = {}
        start = 0
        for i in range(1, len(chunks) + 1):
            if i == len(chunks) or chunks[i].chunk.article_id != chunks[start].chunk.article_id:
                rows[chunks[start].chunk.article_id] = range(start, i)
                start = i
        return cls(
            token=token,
            chunks=chunks,
            vectors=vectors,
            tokenised=tokenised,
            by_id={s.chunk.id: i for i, s in enumerate(chunks)},
            lexical=(lexical or LexicalIndex()).sync([s.chunk for s in chunks], tokenised),
            chunk_terms=ChunkTerms(tokenised),
            article_terms=ArticleTerms(rows, tokenised, cached_articles),
            sources=np.asarray([s.chunk.source for s in chunks], dtype=object),
            article_ids=np.asarray([s.chunk.article_id for s in chunks], dtype=object),
            days=np.asarray([day_number(s.chunk.published_at) if s.chunk.published_at else 0 for s in chunks]),
            cached_chunks=cached_chunks,
            copies=copies or {},
            changed=changed,
        )

    @classmethod
    def load(
        cls,
        store: ChromaStore,
        token: str,
        previous: Snapshot | None = None,
        cached_chunks: int = 4096,
        cached_articles: int = 512,
        lexical: LexicalIndex | None = None,
    ) -> Snapshot:
        """The store's visible chunks. With a `previous` snapshot only the articles whose version
        changed are fetched and tokenised; the rest is reused. `lexical`: the index to bring up to date (see
        `build`); the one a replica keeps on disk, which then indexes only what changed since it last ran."""
        records = store.article_records()
        if previous is None:
            chunks, vectors = store.visible_chunks_and_vectors(records)
            copies = copies_by_original(records)
            return cls.build(
                token, chunks, vectors, None, cached_chunks, cached_articles, copies, tuple(records), lexical
            )
        known = {s.chunk.article_id: s.chunk.article_hash for s in previous.chunks}
        changed = [aid for aid, r in records.items() if known.get(aid) != r.content_hash]
        kept = [
            i
            for i, s in enumerate(previous.chunks)
            if (r := records.get(s.chunk.article_id)) is not None and r.content_hash == s.chunk.article_hash
        ]
        fresh, fresh_vectors = store.visible_chunks_and_vectors(records, changed) if changed else ([], None)
        fresh_terms = [chunk_terms(s) for s in fresh]
        chunks = [previous.chunks[i] for i in kept] + fresh
        tokenised = [previous.tokenised[i] for i in kept] + fresh_terms
        vectors = previous.vectors[kept]
        if fresh_vectors is not None:
            vectors = np.concatenate([vectors, fresh_vectors])
        order = sorted(range(len(chunks)), key=lambda i: (chunks[i].chunk.article_id, chunks[i].chunk.index))
        ordered = [tokenised[i] for i in order]
        return cls.build(
            token,
            [chunks[i] for i in order],
            vectors[order],
            ordered,
            cached_chunks,
            cached_articles,
            copies_by_original(records),
            tuple(changed),
            lexical,
        )

    def search(self, vector: np.ndarray, k: int, mask: np.ndarray | None = None) -> list[int]:
        """Exact nearest chunks (among those `mask` keeps), best first."""
        if mask is None:
            rows, sims = None, self.vectors @ vector
        else:
            rows = np.flatnonzero(mask)
            sims = self.vectors[rows] @ vector
        if not len(sims):
            return []
        k = min(k, len(sims))
        top = np.argpartition(-sims, k - 1)[:k]
        best = top[np.argsort(-sims[top], kind="stable")]
        return [int(i) for i in (best if rows is None else rows[best])]

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Which chunks pass `filters` (None: all of them), written from `Filters.conditions`."""
        if filters is None or filters.empty:
            return None
        columns = {"source": self.sources, "article_id": self.article_ids, "published_day": self.days}
        keep = np.ones(len(self.chunks), dtype=bool)
        for c in filters.conditions():
            column = columns[c.field]
            if isinstance(c.value, tuple):
                keep &= np.isin(column, list(c.value))
            else:  # undated chunks (day 0) fail every date condition, unless it lets them through
                within = (column >= c.value) if c.op == "gte" else (column <= c.value)
                keep &= ((column > 0) & within) | (c.or_undated & (column == 0))
        return keep
