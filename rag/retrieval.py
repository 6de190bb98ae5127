"""Retrieval: dense and lexical (BM25) candidates fused by reciprocal rank fusion, the top few
reordered by their best sentence (sentence vectors stored at ingest, plus the question's words).

Dense search over at most `exact_limit` chunks (all of them, or those a filter keeps) is exact, over
the snapshot's float32 passage vectors: 0.3 ms for 16k chunks, where a Chroma query costs 1.5 ms
through its bindings and a filtered one, scanning metadata, 50 ms. Beyond that it is Chroma's HNSW
index.

Each replica keeps a snapshot of the visible chunks in memory (texts, passage vectors, stored sentence
vectors and the BM25 index) and reloads it when the store's change token moves, so replicas sharing one
Chroma server all see writes made through any of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from rag.embedding import Embedder
from rag.errors import IndexNotReady
from rag.lexical import LexicalIndex, passage_terms
from rag.memory import release_free_heap
from rag.models import Filters, ScoredChunk
from rag.storage import ChromaStore, StoredChunk, day_number
from rag.text import setting_terms, terms


def chunk_terms(stored: StoredChunk) -> tuple[str, ...]:
    """What BM25 indexes of a chunk: its terms as stored with it, or (stored by an older tokeniser)
    made again. Tokenising was half of a replica's start time."""
    if stored.terms is not None:
        return stored.terms
    return passage_terms(stored.chunk.title, stored.chunk.text)


_CACHED_CHUNKS = 4096  # chunks whose decoded vectors / sentence terms a snapshot keeps at most
_CACHED_ARTICLES = 512  # articles whose term sets a snapshot keeps (a question reads about 8)
T = TypeVar("T")


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

    def __init__(self, rows: dict[str, range], tokenised: list[tuple[str, ...]]) -> None:
        self._rows = rows
        self._tokenised = tokenised
        self._cache: dict[str, frozenset[str]] = {}

    def get(self, article_id: str, default: frozenset[str] = frozenset()) -> frozenset[str]:
        found = self._cache.get(article_id)
        if found is not None:
            return found
        rows = self._rows.get(article_id)
        if rows is None:
            return default
        found = frozenset(term for row in rows for term in self._tokenised[row])
        if len(self._cache) >= _CACHED_ARTICLES:
            self._cache.clear()
        self._cache[article_id] = found
        return found

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)


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
    lexical: LexicalIndex
    chunk_terms: ChunkTerms
    article_terms: ArticleTerms
    sources: np.ndarray
    article_ids: np.ndarray
    days: np.ndarray
    memo: dict[str, dict[int, Any]]  # per-chunk values derived from this snapshot, by kind (see `memoised`)

    def memoised(self, kind: str, index: int, make: Callable[[StoredChunk], T], cap: int = _CACHED_CHUNKS) -> T:
        """`make(chunks[index])`, made once per snapshot and kept for up to `cap` chunks of that kind (then
        the kind's cache starts over). For what is derived from a chunk on every question that reads it;
        only retrieved chunks are ever asked about, so the cache holds the corpus's popular few."""
        cache = self.memo.setdefault(kind, {})
        found = cache.get(index)
        if found is None:
            if len(cache) >= cap:
                cache.clear()
            found = cache[index] = make(self.chunks[index])
        return found  # type: ignore[no-any-return]

    def sentence_vectors(self, index: int) -> np.ndarray:
        """Chunk `index`'s sentence vectors, decoded once per snapshot (decoding on every use took a
        fifth of a query's time)."""
        return self.memoised("sentence_vectors", index, _read_only_sentence_vectors)

    def sentence_terms(self, index: int) -> list[frozenset[str]]:
        """The terms of each sentence of chunk `index`, tokenised once per snapshot (tokenising is most
        of what ranking a passage's sentences costs)."""
        return self.memoised("sentence_terms", index, _sentence_terms)

    @classmethod
    def build(
        cls,
        token: str,
        chunks: list[StoredChunk],
        vectors: np.ndarray,
        tokenised: list[tuple[str, ...]] | None = None,
    ) -> Snapshot:
        """A snapshot of `chunks` (in article order) and their passage vectors (rows in the same order);
        `tokenised` (their terms, same order) saves re-tokenising."""
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
            lexical=LexicalIndex(tokenised),
            chunk_terms=ChunkTerms(tokenised),
            article_terms=ArticleTerms(rows, tokenised),
            sources=np.asarray([s.chunk.source for s in chunks], dtype=object),
            article_ids=np.asarray([s.chunk.article_id for s in chunks], dtype=object),
            days=np.asarray([day_number(s.chunk.published_at) if s.chunk.published_at else 0 for s in chunks]),
            memo={},
        )

    @classmethod
    def load(cls, store: ChromaStore, token: str, previous: Snapshot | None = None) -> Snapshot:
        """The store's visible chunks. With a `previous` snapshot only the articles whose version
        changed are fetched and tokenised; the rest is reused."""
        records = store.article_records()
        if previous is None:
            return cls.build(token, *store.visible_chunks_and_vectors(records))
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
        return cls.build(token, [chunks[i] for i in order], vectors[order], [tokenised[i] for i in order])

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
        """Which chunks pass `filters` (None: all of them)."""
        if filters is None or filters.empty:
            return None
        keep = np.ones(len(self.chunks), dtype=bool)
        if filters.sources:
            keep &= np.isin(self.sources, list(filters.sources))
        if filters.article_ids:
            keep &= np.isin(self.article_ids, list(filters.article_ids))
        if filters.date_from:
            keep &= self.days >= day_number(filters.date_from)
        if filters.date_to:
            keep &= (self.days > 0) & (self.days <= day_number(filters.date_to))
        return keep


@dataclass(slots=True)
class Retrieval:
    """Ranked passages for one question, with the vectors and timings the answerer reuses."""

    question_vector: np.ndarray
    hits: list[ScoredChunk]
    snapshot: Snapshot
    timings_ms: dict[str, float]


class HybridRetriever:
    """Dense + BM25 with weighted reciprocal rank fusion."""

    def __init__(
        self,
        store: ChromaStore,
        embedder: Embedder,
        candidates: int = 50,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        lexical_weight: float = 1.0,
        refresh_seconds: float = 2.0,
        rerank_depth: int = 10,
        rerank_fused_weight: float = 40.0,
        rerank_lexical_weight: float = 1.0,
        rerank_setting_weight: float = 0.2,
        prefer_weight: float = 0.3,
        exact_limit: int = 20_000,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._candidates = candidates
        self._rrf_k = rrf_k
        self._dense_weight = dense_weight
        self._lexical_weight = lexical_weight
        self._refresh_seconds = refresh_seconds
        self._rerank_depth = rerank_depth
        self._rerank_fused_weight = rerank_fused_weight
        self._rerank_lexical_weight = rerank_lexical_weight
        self._rerank_setting_weight = rerank_setting_weight
        self._prefer_weight = prefer_weight
        # Dense queries over at most this many chunks are answered exactly from the snapshot.
        self._exact_limit = exact_limit
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self, force: bool = False) -> Snapshot:
        """Reload the in-memory snapshot if the store changed (checked at most every refresh_seconds)."""
        now = time.monotonic()
        current = self._snapshot
        if not force and current is not None and now - self._checked_at < self._refresh_seconds:
            return current
        with self._lock:
            if not force and self._snapshot is not None and now - self._checked_at < self._refresh_seconds:
                return self._snapshot
            token = self._store.generation()
            if force or self._snapshot is None or token != self._snapshot.token:
                self._snapshot = Snapshot.load(self._store, token, previous=self._snapshot)
                release_free_heap()
            self._checked_at = time.monotonic()
            return self._snapshot

    def retrieve(self, question: str, top_k: int, filters: Filters | None = None) -> Retrieval:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        snapshot = self.refresh()
        if not snapshot.chunks:
            raise IndexNotReady("the index is empty: ingest some articles first")
        t1 = time.perf_counter()
        vector = self._embedder.embed_queries([question])[0]
        t2 = time.perf_counter()
        lists: list[tuple[list[int], float]] = []
        scopes = [(filters, snapshot.mask(filters))]
        preferred = filters.preferred if filters is not None else None
        favoured = snapshot.mask(preferred) if preferred is not None else None
        if (
            favoured is not None
            and favoured.any()
            and not (scopes[0][1] is not None and (favoured == scopes[0][1]).all())
        ):
            scopes.append((preferred, favoured))  # a preferred range that narrows the search gets its own
        for scope, mask in scopes:
            if (len(snapshot.chunks) if mask is None else int(mask.sum())) <= self._exact_limit:
                lists.append((snapshot.search(vector, self._candidates, mask), self._dense_weight))
            else:
                dense = self._store.query(vector, self._candidates, scope)
                lists.append(([snapshot.by_id[i] for i, _ in dense if i in snapshot.by_id], self._dense_weight))
        t3 = time.perf_counter()
        scores = snapshot.lexical.scores(question)
        for _, mask in scopes:
            found = snapshot.lexical.top(scores, self._candidates, mask)
            lists.append(([i for i, _ in found], self._lexical_weight))
        t4 = time.perf_counter()
        fused = self._fuse(snapshot, lists, max(top_k, self._rerank_depth))
        if favoured is not None and favoured.all():
            favoured = None  # everything is preferred: no bonus to give
        hits = self._rerank(snapshot, question, vector, fused, favoured)[:top_k]
        t5 = time.perf_counter()
        timings.update(
            refresh=(t1 - t0) * 1000,
            embed=(t2 - t1) * 1000,
            dense=(t3 - t2) * 1000,
            lexical=(t4 - t3) * 1000,
            fuse=(t5 - t4) * 1000,
        )
        return Retrieval(vector, hits, snapshot, timings)

    def _fuse(self, snapshot: Snapshot, lists: list[tuple[list[int], float]], top_k: int) -> list[ScoredChunk]:
        """Weighted reciprocal rank fusion of ranked chunk lists: dense and lexical, and with a preferred
        date range the same two restricted to it, so that preferred passages collect more votes."""
        scores: dict[int, float] = {}
        for ranked, weight in lists:
            if not weight:
                continue  # a retriever switched off contributes no candidates
            for rank, idx in enumerate(ranked, start=1):
                scores[idx] = scores.get(idx, 0.0) + weight / (self._rrf_k + rank)
        dense_rank = {idx: r for r, idx in enumerate(lists[0][0], start=1)}
        lexical_rank = {idx: r for r, idx in enumerate(lists[len(lists) // 2][0], start=1)}
        # Ties (same fused score) break by dense rank, then by position, so results are deterministic.
        order = sorted(scores, key=lambda i: (-scores[i], dense_rank.get(i, 1 << 30), i))[:top_k]
        return [
            ScoredChunk(
                chunk=snapshot.chunks[idx].chunk,
                score=scores[idx],
                rank=rank,
                dense_rank=dense_rank.get(idx),
                lexical_rank=lexical_rank.get(idx),
            )
            for rank, idx in enumerate(order, start=1)
        ]

    def _rerank(
        self,
        snapshot: Snapshot,
        question: str,
        vector: np.ndarray,
        hits: list[ScoredChunk],
        favoured: np.ndarray | None = None,
    ) -> list[ScoredChunk]:
        """The top `rerank_depth` fused passages reordered by fused score and their best sentence.

        A passage's best sentence scores its cosine with the question plus `rerank_lexical_weight` times
        the IDF-weighted share of the question's terms it contains: a passage whose one sentence answers
        beats one that is only about the same people. Passages in the preferred date range (`favoured`)
        get `prefer_weight` more: enough to pass an older story told in closer words, not a better answer.
        Ranks are renumbered.

        The terms of the question's setting (`rag.text.setting_phrases`: "during the December 2022 video call")
        that a sentence lacks count `rerank_setting_weight` of theirs when its article has them: an article
        names its occasion once, and the sentence that answers rarely repeats it, while one that only restates
        it ("Putin extended the invitation during a video call") otherwise takes the setting's whole weight.
        """
        depth = min(self._rerank_depth, len(hits))
        if depth < 2:
            return hits
        weights, total = snapshot.lexical.question_weights(question)
        named = setting_terms(question)
        setting = {t: w for t, w in weights.items() if t in named}
        keyed: list[tuple[float, int]] = []
        for position, hit in enumerate(hits[:depth]):
            sims = snapshot.sentence_vectors(snapshot.by_id[hit.chunk.id]) @ vector
            in_article: dict[str, float] = {}
            if setting:
                article = snapshot.article_terms.get(hit.chunk.article_id)
                in_article = {t: self._rerank_setting_weight * w for t, w in setting.items() if t in article}
            best = 0.0
            for row, found in enumerate(snapshot.sentence_terms(snapshot.by_id[hit.chunk.id])):
                held = sum(w for t, w in weights.items() if t in found)
                if in_article:
                    held += sum(w for t, w in in_article.items() if t not in found)
                best = max(best, float(sims[row]) + self._rerank_lexical_weight * held / total)
            key = self._rerank_fused_weight * hit.score + best
            if favoured is not None and favoured[snapshot.by_id[hit.chunk.id]]:
                key += self._prefer_weight
            keyed.append((key, position))
        keyed.sort(key=lambda k: (-k[0], k[1]))
        # The reranked passages carry their rerank score, which is at least `rerank_fused_weight` (>= 1) times
        # their fused score, so scores still fall with rank below them.
        head = [(hits[p], key) for key, p in keyed]
        tail = [(h, h.score) for h in hits[depth:]]
        return [
            ScoredChunk(h.chunk, score, rank, h.dense_rank, h.lexical_rank)
            for rank, (h, score) in enumerate([*head, *tail], start=1)
        ]
