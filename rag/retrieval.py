"""Retrieval: dense and lexical (BM25) candidates fused by reciprocal rank fusion, the top few
reordered by their best sentence (sentence vectors stored at ingest, plus the question's words).

Dense search is Chroma's HNSW index, with the filters as its `where`. A filtered search over at most
`exact_limit` chunks is exact instead, over those chunks' passage vectors (read from the store once and
cached): Chroma's filtered search scans metadata and may return fewer than asked when the filter is narrow.

Each replica keeps a snapshot (`rag.snapshot`) of a few numbers per visible chunk, and reloads it when the
store's change token moves, reading only the articles the change log names; replicas sharing one Chroma server
so see writes made through any of them. Texts and sentence vectors are read for the fused hits only. Its BM25
index (`rag.lexical`) lives on the replica's disk and is updated with the articles each reload found changed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from rag.embedding import Embedder
from rag.errors import IndexNotReady
from rag.lexical import LexicalIndex
from rag.memory import release_free_heap
from rag.models import Filters, ScoredChunk
from rag.policies import ReloadPolicy, RetrievalPolicy
from rag.question import Question
from rag.snapshot import Passages, Sentences, Snapshot
from rag.storage import ChromaStore

log = logging.getLogger("newsrag.retrieval")


class Fused(NamedTuple):
    """A fused hit with its snapshot row and what was read of it."""

    row: int
    hit: ScoredChunk
    read: Sentences


@dataclass(slots=True)
class Retrieval:
    """Ranked passages for one question, with the parsed question, its vector and the timings."""

    question: Question
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
        policy: RetrievalPolicy | None = None,
        refresh_seconds: float = 2.0,
        lexical: LexicalIndex | None = None,
        reload: ReloadPolicy | None = None,
    ) -> None:
        """`lexical`: the replica's lexical index (default: one in memory, rebuilt by each new retriever)."""
        self._store = store
        self.lexical = lexical or LexicalIndex()
        self._embedder = embedder
        self.policy = policy or RetrievalPolicy()
        self.reload = reload or ReloadPolicy()
        self.passages = Passages(store, self.policy.cached_chunks, self.policy.cached_vectors)
        self._refresh_seconds = refresh_seconds
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._loaded_since = 0.0  # time.time() before the token the snapshot was loaded at was read
        self._full_at = 0.0  # time.monotonic() of the last reload that read every record
        self._saved_at = -math.inf  # time.monotonic() the snapshot's rows were last saved
        self._unsaved = False  # whether a snapshot loaded since then holds changes
        self._lock = threading.Lock()
        self._unchecked: set[str] = set()  # articles changed since the last take_changed()
        # Whether a question reloads the snapshot itself when the store changed. `rag serve` turns it off: its
        # upkeep thread keeps the snapshot current, so that no question ever waits for a reload.
        self.refresh_on_query = True

    @property
    def snapshot(self) -> Snapshot | None:
        return self._snapshot

    def refresh(self, force: bool = False) -> Snapshot:
        """Reload the in-memory snapshot if the store changed (checked at most every refresh_seconds; `force`: now,
        and even if the token did not move)."""
        now = time.monotonic()
        current = self._snapshot
        if not force and current is not None and now - self._checked_at < self._refresh_seconds:
            return current
        with self._lock:
            if not force and self._snapshot is not None and now - self._checked_at < self._refresh_seconds:
                return self._snapshot
            started = time.time()
            token = self._store.generation()
            if force or self._snapshot is None or token != self._snapshot.token:
                first = self._snapshot is None
                self._snapshot = self._load(token, started)
                if not first:  # a first load's "changes" are every article: the audit after start covers those
                    self._unchecked.update(self._snapshot.changed)
                release_free_heap()
            self._checked_at = time.monotonic()
            return self._snapshot

    def _load(self, token: str, started: float) -> Snapshot:
        """The snapshot at `token`: from the change log when the last one was loaded recently enough for the log
        to cover the gap (with an overlap for slow writes and clocks), else by comparing every record."""
        previous, reload = self._snapshot, self.reload
        changes = None
        behind = started - self._loaded_since + reload.overlap_seconds
        if (
            previous is not None
            and behind < self._store.change_log_seconds
            and time.monotonic() - self._full_at < reload.full_scan_seconds
        ):
            changes = self._store.changes_since(self._loaded_since - reload.overlap_seconds)
        began = time.perf_counter()
        snapshot = Snapshot.load(
            self._store, token, previous, self.passages, self.lexical, changes, self.policy.cached_articles
        )
        log.info(
            "loaded %d passages of %d articles in %.2f s (%d articles read, %s)",
            len(snapshot),
            snapshot.article_count,
            time.perf_counter() - began,
            len(snapshot.changed),
            "from the change log" if changes is not None else "every record compared",
        )
        self._loaded_since = started
        if changes is None:
            self._full_at = time.monotonic()
        self._unsaved |= bool(snapshot.changed)
        if previous is None and not self._unsaved:
            self._saved_at = time.monotonic()  # started from the saved rows, nothing changed: the file is current
        elif self._unsaved and time.monotonic() - self._saved_at >= reload.save_seconds:
            self._save(snapshot)
        return snapshot

    def _save(self, snapshot: Snapshot) -> None:
        folder = self.lexical.path
        if folder is None:
            return
        try:
            snapshot.save(folder)
        except OSError as exc:  # a full disk: the next start reads every chunk instead
            log.warning("the snapshot's rows were not saved to %s: %s", folder, exc)
        self._saved_at = time.monotonic()
        self._unsaved = False

    def close(self) -> None:
        """Save what the snapshot holds of each chunk (the next start reads only what changed), and let go of the
        lexical index's folder."""
        with self._lock:
            if self._snapshot is not None and self._unsaved:
                self._save(self._snapshot)
        self.lexical.close()

    def current(self) -> Snapshot:
        """The snapshot a request reads: the one in memory when something else keeps it current
        (`refresh_on_query` off), else `refresh()`'s. The first load happens here either way."""
        snapshot = self._snapshot
        return self.refresh() if self.refresh_on_query or snapshot is None else snapshot

    def take_changed(self) -> set[str]:
        """The articles whose version changed in the snapshots loaded since the last call (for an audit)."""
        with self._lock:
            taken, self._unchecked = self._unchecked, set()
        return taken

    def retrieve(self, text: str, top_k: int, filters: Filters | None = None) -> Retrieval:
        """The `top_k` best passages for the question `text`, which is parsed here, once, against the snapshot
        searched: the `Retrieval` carries the parsed question to the later stages."""
        policy = self.policy
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        snapshot = self.current()
        if not len(snapshot):
            raise IndexNotReady("the index is empty: ingest some articles first")
        question = Question.parse(text, snapshot.lexical)
        t1 = time.perf_counter()
        vector = self._embedder.embed_queries([text])[0]
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
            if mask is not None and int(mask.sum()) <= policy.exact_limit:
                lists.append((snapshot.search(vector, policy.candidates, mask), policy.dense_weight))
            else:
                dense = snapshot.rows_of_ids([i for i, _ in self._store.query(vector, policy.candidates, scope)])
                lists.append(([r for r in dense if r >= 0 and (mask is None or mask[r])], policy.dense_weight))
        t3 = time.perf_counter()
        for scope, _ in scopes:
            found = snapshot.lexical.top(question.terms, policy.candidates, scope)
            lists.append(([i for i, _ in found], policy.lexical_weight))
        t4 = time.perf_counter()
        fused = self._fuse(snapshot, lists, max(top_k, policy.rerank_depth))
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
        return Retrieval(question, vector, hits, snapshot, timings)

    def _fuse(self, snapshot: Snapshot, lists: list[tuple[list[int], float]], top_k: int) -> list[Fused]:
        """Weighted reciprocal rank fusion of ranked chunk lists: dense and lexical, and with a preferred
        date range the same two restricted to it, so that preferred passages collect more votes. The `top_k`
        best are read from the store (text and sentences: the only chunks a question reads)."""
        scores: dict[int, float] = {}
        for ranked, weight in lists:
            if not weight:
                continue  # a retriever switched off contributes no candidates
            for rank, idx in enumerate(ranked, start=1):
                scores[idx] = scores.get(idx, 0.0) + weight / (self.policy.rrf_k + rank)
        dense_rank = {idx: r for r, idx in enumerate(lists[0][0], start=1)}
        lexical_rank = {idx: r for r, idx in enumerate(lists[len(lists) // 2][0], start=1)}
        # Ties (same fused score) break by dense rank, then by position, so results are deterministic.
        order = sorted(scores, key=lambda i: (-scores[i], dense_rank.get(i, 1 << 30), i))[:top_k]
        read = snapshot.read(order)  # a chunk deleted since the snapshot was loaded is left out
        kept = [idx for idx in order if idx in read]
        return [
            Fused(
                idx,
                ScoredChunk(
                    chunk=read[idx].chunk,
                    score=scores[idx],
                    rank=rank,
                    dense_rank=dense_rank.get(idx),
                    lexical_rank=lexical_rank.get(idx),
                ),
                read[idx],
            )
            for rank, idx in enumerate(kept, start=1)
        ]

    def _rerank(
        self,
        snapshot: Snapshot,
        question: Question,
        vector: np.ndarray,
        fused: list[Fused],
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
        policy = self.policy
        hits = [f.hit for f in fused]
        depth = min(policy.rerank_depth, len(hits))
        if depth < 2:
            return hits
        weights, total = question.weights, question.total
        setting = {t: w for t, w in weights.items() if t in question.setting}
        keyed: list[tuple[float, int]] = []
        for position, (row, hit, read) in enumerate(fused[:depth]):
            sims = read.vectors @ vector
            in_article: dict[str, float] = {}
            if setting:
                article = snapshot.article_terms(hit.chunk.article_id)
                in_article = {t: policy.rerank_setting_weight * w for t, w in setting.items() if t in article}
            best = 0.0
            for n, found in enumerate(read.terms):
                held = sum(w for t, w in weights.items() if t in found)
                if in_article:
                    held += sum(w for t, w in in_article.items() if t not in found)
                best = max(best, float(sims[n]) + policy.rerank_lexical_weight * held / total)
            key = policy.rerank_fused_weight * hit.score + best
            if favoured is not None and favoured[row]:
                key += policy.prefer_weight
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
