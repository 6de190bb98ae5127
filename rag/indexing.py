"""Indexing: load -> chunk -> embed -> store, idempotent and safe to interrupt.

Unchanged articles (same content hash as stored) are skipped without embedding; a changed
article replaces its old chunks; articles that vanished from a re-ingested file are removed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from rag.chunking import Chunker
from rag.embedding import Embedder
from rag.loading import corpus_files, load_file
from rag.models import Article, Chunk, IngestReport
from rag.storage import ArticleWrite, ChromaStore

Progress = Callable[[int, int], None]


def embedded_text(chunk: Chunk, prefix: str) -> str:
    """What the embedding model sees for a chunk: the title (and date) line, then the passage."""
    return f"{prefix}\n{chunk.text}" if prefix else chunk.text


def make_prefix(mode: str) -> Callable[[Article], str]:
    """The text prepended to every chunk of an article before embedding."""

    def prefix(article: Article) -> str:
        if mode == "none":
            return ""
        if mode == "title_date" and article.published_at:
            return f"{article.title} ({article.published_at.isoformat()})"
        return article.title

    return prefix


class Indexer:
    """Writes articles into the store; the one place where ingestion happens."""

    def __init__(
        self,
        store: ChromaStore,
        embedder: Embedder,
        chunker: Chunker,
        prefix: Callable[[Article], str],
        batch_chunks: int = 64,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self.chunker = chunker
        self._prefix = prefix
        self._batch_chunks = batch_chunks
        # One store write at a time per process: concurrent HTTP writes of the same article must not
        # interleave their "write new, delete old" steps. Chunking and embedding (nearly all of an ingest's
        # time) run outside it, so that a small write is not held up for the minutes a large upload embeds.
        self._lock = threading.RLock()

    def ingest_paths(self, paths: Iterable[Path], progress: Progress | None = None) -> IngestReport:
        """Ingest files and folders; a re-ingested file's vanished articles are deleted."""
        files = corpus_files(paths)
        # A bulk ingest is the natural moment to clear what an interrupted one left behind
        # (invisible to readers either way); single HTTP writes skip this full scan.
        self._store.repair()
        articles: list[Article] = []
        for path in files:
            articles.extend(load_file(path))
        report = self.ingest(articles, progress=progress, sync_files={p.name for p in files})
        report.files = [str(p) for p in files]
        return report

    def ingest(
        self,
        articles: Sequence[Article],
        progress: Progress | None = None,
        sync_files: set[str] | None = None,
    ) -> IngestReport:
        """Add or replace `articles`. With `sync_files`, stored articles from those files that are
        not in `articles` are removed (the file no longer holds them).

        Two ingests of the same article at once both write it, each version whole, and the later
        write is the one kept, as with writes from two replicas."""
        return self._ingest(articles, progress, sync_files)

    def _ingest(
        self, articles: Sequence[Article], progress: Progress | None, sync_files: set[str] | None
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(articles=len(articles), ids=[a.id for a in articles])
        stored = self._store.article_records()
        pending: list[Article] = []
        seen: set[str] = set()
        for article in articles:
            if article.id in seen:
                continue  # the same id twice in one batch: the first wins
            seen.add(article.id)
            record = stored.get(article.id)
            if record is not None and record.content_hash == article.content_hash:
                report.unchanged += 1
            else:
                pending.append(article)
                if record is None:
                    report.added += 1
                else:
                    report.updated += 1
        if sync_files:
            with self._lock:  # read again under the lock: a write since may have taken an article off the file
                for record in self._store.article_records().values():
                    if record.source_file in sync_files and record.id not in seen:
                        self._store.delete_article(record.id)
                        report.removed += 1
        done = 0
        for batch in self._batches(pending):
            writes = self._embed_batch(batch, report)
            with self._lock:
                self._store.write_articles(writes)
            done += len(batch)
            if progress:
                progress(done, len(pending))
        if report.changed:
            self._store.touch()
        report.seconds = time.perf_counter() - started
        return report

    def delete(self, article_id: str) -> None:
        with self._lock:
            self._store.delete_article(article_id)
            self._store.touch()

    def _batches(self, articles: list[Article]) -> Iterable[list[tuple[Article, list[Chunk]]]]:
        """Groups of whole articles with about `batch_chunks` chunks, so the model sees full batches."""
        batch: list[tuple[Article, list[Chunk]]] = []
        size = 0
        for article in articles:
            chunks = self.chunker.split(article)
            batch.append((article, chunks))
            size += len(chunks)
            if size >= self._batch_chunks:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch

    def _embed_batch(self, batch: list[tuple[Article, list[Chunk]]], report: IngestReport) -> list[ArticleWrite]:
        texts: list[str] = []
        spans: list[list[tuple[int, int]]] = []
        for article, chunks in batch:
            prefix = self._prefix(article)
            head = len(prefix) + 1 if prefix else 0
            for chunk in chunks:
                texts.append(embedded_text(chunk, prefix))
                spans.append([(head + s.start - chunk.start, head + s.end - chunk.start) for s in chunk.sentences])
        report.embedded_tokens += sum(self._embedder.count_tokens(texts))
        vectors = self._embedder.embed_passages(texts, spans)
        writes: list[ArticleWrite] = []
        pos = 0
        for article, chunks in batch:
            mine = vectors[pos : pos + len(chunks)]
            pos += len(chunks)
            passage = np.stack([v.passage for v in mine]) if mine else np.zeros((0, self._embedder.dim), np.float32)
            writes.append((article, chunks, passage, [v.sentences for v in mine]))
            report.chunks += len(chunks)
        return writes
