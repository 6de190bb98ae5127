"""Indexing: load -> chunk -> embed -> store, idempotent and safe to interrupt.

Unchanged articles (same content hash as stored) are skipped without embedding; a changed
article replaces its old chunks; articles that vanished from a re-ingested file are removed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.chunking import Chunker
from rag.embedding import Embedder
from rag.errors import DocumentNotFound, InvalidDocument, RagError
from rag.loading import corpus_files, is_html_name, load_file
from rag.models import Article, Chunk, IngestReport
from rag.policies import ReloadPolicy
from rag.storage import ArticleWrite, Audit, ChromaStore
from rag.syndication import CopyFinder, SyndicationPolicy, body_text, copies_by_original, signature

Progress = Callable[[int, int], None]
log = logging.getLogger("newsrag.indexing")


def _say_what_went_in(exc: RagError, written: list[str], removed: list[str], total: int) -> None:
    """Name, on the error of a write that failed part-way, what it had already done: those articles are live."""
    exc.written, exc.removed = tuple(written), tuple(removed)
    shown = ", ".join(written[:10]) + (f" and {len(written) - 10} more" if len(written) > 10 else "")
    done = f"stored {len(written)} of {total} articles ({shown})" if written else "stored none of the articles"
    if removed:
        done += f" and removed {len(removed)} the file no longer holds"
    exc.args = (
        f"{exc}. Before it failed this write had {done}: those are live, the rest were not written; sending the "
        "same request again is safe (what is stored answers unchanged)",
    )


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
        syndication: SyndicationPolicy | None = None,
        reload: ReloadPolicy | None = None,
    ) -> None:
        self._syndication = syndication or SyndicationPolicy()
        self._reload = reload or ReloadPolicy()
        self._finder: CopyFinder | None = None  # stored articles copies are found among (see _copy_finder)
        self._finder_token: str | None = None
        self._finder_since = 0.0  # time.time() before the records the finder holds were read
        self._copy_of: dict[str, str] = {}  # stored copies -> their originals, kept with the finder
        self._store = store
        self._embedder = embedder
        self.chunker = chunker
        self._prefix = prefix
        self._batch_chunks = batch_chunks
        # One store write at a time per process: concurrent HTTP writes of the same article must not
        # interleave their "write new, delete old" steps. Chunking and embedding (nearly all of an ingest's
        # time) run outside it, so that a small write is not held up for the minutes a large upload embeds.
        self._lock = threading.RLock()

    def ingest_paths(
        self, paths: Iterable[Path], progress: Progress | None = None, dry_run: bool = False
    ) -> IngestReport:
        """Ingest files and folders; a re-ingested file's vanished articles are deleted. An HTML page with no
        article on it is skipped (with its reason in the report) rather than stopping the others."""
        files = corpus_files(paths)
        if not dry_run:
            # A bulk ingest is the natural moment to clear what an interrupted one left behind
            # (invisible to readers either way); single HTTP writes skip this full scan.
            self._store.repair()
        articles: list[Article] = []
        skipped: list[tuple[str, str]] = []
        synced: set[str] = set()
        for path in files:
            try:
                articles.extend(load_file(path))
                synced.add(path.name)
            except InvalidDocument as exc:
                if not is_html_name(path.name):
                    raise
                skipped.append((str(path), str(exc)))  # what it stored before stays
        report = self.ingest(articles, progress=progress, sync_files=synced, dry_run=dry_run)
        report.skipped.extend(skipped)
        report.files = [str(p) for p in files]
        return report

    def ingest(
        self,
        articles: Sequence[Article],
        progress: Progress | None = None,
        sync_files: set[str] | None = None,
        dry_run: bool = False,
    ) -> IngestReport:
        """Add or replace `articles`. With `sync_files`, stored articles from those files that are
        not in `articles` are removed (the file no longer holds them). A `dry_run` counts what would be
        added, replaced and removed, and writes nothing.

        Two ingests of the same article at once both write it, each version whole, and the later
        write is the one kept, as with writes from two replicas."""
        return self._ingest(articles, progress, sync_files, dry_run)

    def _ingest(
        self, articles: Sequence[Article], progress: Progress | None, sync_files: set[str] | None, dry_run: bool
    ) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(articles=len(articles), ids=[a.id for a in articles])
        if not dry_run:
            self._store.check_writable()
        # A write reads the records of its own articles; re-reading a file reads all (its vanished articles go).
        ids = sorted({a.id for a in articles})
        stored = self._store.article_records() if sync_files or dry_run else self._store.records_of(ids)
        pending: list[Article] = []
        copies: list[Article] = []
        unchanged: list[Article] = []
        seen: set[str] = set()
        try:
            with self._lock:  # the copy finder is shared: decide, and update it, one ingest at a time
                finder = CopyFinder.of(stored, self._syndication) if dry_run else self._copy_finder()
                copy_of = {r.id: r.copy_of for r in stored.values() if r.copy_of} if dry_run else self._copy_of
                originals = set(copy_of.values())
                for article in articles:
                    if article.id in seen:
                        continue  # the same id twice in one batch: the first wins
                    seen.add(article.id)
                    record = stored.get(article.id)
                    if record is not None and record.content_hash == article.content_hash:
                        unchanged.append(article)
                        continue
                    sign = signature(body_text(article), self._syndication)
                    # An article others are copies of stays their original, whatever it becomes.
                    original = None if article.id in originals else finder.original_of(article.id, sign, article.source)
                    article = replace(article, copy_of=original, signature=sign)
                    if original is not None:
                        finder.remove(article.id)
                        copy_of[article.id] = original
                        copies.append(article)
                        report.folded += 1
                        continue
                    if sign is not None:
                        finder.add(article.id, sign, article.source)
                    copy_of.pop(article.id, None)
                    pending.append(article)
                    if record is None:
                        report.added += 1
                    else:
                        report.updated += 1
        except BaseException:
            self._finder = None  # it may hold what this ingest will not write
            raise
        # "Unchanged" means its chunks are there too: a version whose chunks were lost is written again.
        lost = set(self._store.audit(stored, [a.id for a in unchanged]).missing) if unchanged else set()
        for article in unchanged:
            if article.id in lost:
                log.warning("article %s had lost its passages: writing them again", article.id)
                pending.append(
                    replace(article, copy_of=stored[article.id].copy_of, signature=stored[article.id].signature)
                )
                report.updated += 1
            else:
                report.unchanged += 1
        if dry_run:
            report.removed = sum(
                1 for r in stored.values() if sync_files and r.source_file in sync_files and r.id not in seen
            )
            report.seconds = time.perf_counter() - started
            return report
        written: list[str] = []
        removed: list[str] = []
        try:
            if sync_files:
                with self._lock:  # read again under the lock: a write since may have taken an article off the file
                    for record in self._store.article_records().values():
                        if record.source_file in sync_files and record.id not in seen:
                            self._store.delete_article(record.id)
                            finder.remove(record.id)
                            removed.append(record.id)
                            report.removed += 1
            self._write(pending, report, progress, written)
            if copies:
                empty = np.zeros((0, self._embedder.dim), np.float32)
                with self._lock:
                    self._store.write_articles([(a, [], empty, []) for a in copies])
                written.extend(a.id for a in copies)
        except BaseException as exc:
            self._finder = None  # it may name articles that were never written
            if isinstance(exc, RagError) and (written or removed):
                _say_what_went_in(exc, written, removed, len(pending) + len(copies))
                self._touched_quietly()
            raise
        if report.changed:
            self._touched()
        report.seconds = time.perf_counter() - started
        return report

    def check(self, article_ids: Sequence[str] | None = None) -> Audit:
        """Audit the stored chunks of `article_ids` (all: None): stale leftovers are removed, and a record whose
        passages were lost (a crash, or writers racing) is chunked and embedded again from its stored text."""
        records = self._store.article_records() if article_ids is None else self._store.records_of(article_ids)
        audit = self._store.audit(records, article_ids)
        for article_id in audit.missing:
            with self._lock:  # no write or delete of this process in between: read, check, write again
                try:
                    article = self._store.read_article(article_id)
                except DocumentNotFound:
                    continue  # deleted since
                if article.content_hash != records[article_id].content_hash or article.copy_of is not None:
                    continue  # replaced since (that write brought its own passages), or a copy (none to have)
                log.warning("article %s had lost its passages: writing them again", article_id)
                self._write([article], IngestReport())
        if audit.missing or audit.removed:
            self._touched()
        return audit

    def warm(self) -> None:
        """Build the copy finder now (reading every stored signature once), so that the first write does not."""
        with self._lock:
            self._copy_finder()

    def _copy_finder(self) -> CopyFinder:
        """The copy finder, brought up to date with what other processes wrote since this indexer last looked:
        the records the store's change log names, or, when the log cannot cover the gap (or at first), every
        stored signature."""
        token = self._store.generation()
        if self._finder is not None and token == self._finder_token:
            return self._finder
        started = time.time()
        overlap = self._reload.overlap_seconds
        if self._finder is None or started - self._finder_since + overlap >= self._store.change_log_seconds:
            records = self._store.article_records()
            self._finder = CopyFinder.of(records, self._syndication)
            self._copy_of = {r.id: r.copy_of for r in records.values() if r.copy_of}
        else:
            named = self._store.changes_since(self._finder_since - overlap)
            if named is None:  # the log was cut since: rebuild
                self._finder = None
                return self._copy_finder()
            found = self._store.records_of(named)
            for article_id in named:
                self._finder.remove(article_id)
                self._copy_of.pop(article_id, None)
                record = found.get(article_id)
                if record is None:
                    continue  # deleted
                if record.copy_of:
                    self._copy_of[article_id] = record.copy_of
                elif record.signature:
                    self._finder.add(article_id, record.signature, record.source)
        self._finder_since = started
        self._finder_token = token
        return self._finder

    def _touched(self) -> None:
        """Record a change; the copy finder, updated along with this indexer's writes, stays current."""
        token = self._store.touch()
        with self._lock:
            self._finder_token = token

    def _touched_quietly(self) -> None:
        """`_touched` after a write that failed part-way: the part written is announced if the store lets us."""
        with contextlib.suppress(RagError):  # the store is failing: other replicas see it after the next write
            self._touched()

    def _write(
        self,
        articles: list[Article],
        report: IngestReport,
        progress: Progress | None = None,
        written: list[str] | None = None,
    ) -> None:
        """Embed and store `articles` in batches; `written` collects the ids stored so far (each batch whole)."""
        done = 0
        for batch in self._batches(articles):
            writes = self._embed_batch(batch, report)
            with self._lock:
                self._store.write_articles(writes)
            if written is not None:
                written.extend(a.id for a, _ in batch)
            done += len(batch)
            if progress:
                progress(done, len(articles))

    def delete(self, article_id: str) -> None:
        """Remove an article. If other outlets' copies of it are stored, the oldest is promoted in its place
        (chunked, embedded, searched) before the article goes, and the other copies become its copies: a crash
        half-way leaves both searchable, never neither."""
        with self._lock:
            if not self._store.records_of([article_id]):
                raise DocumentNotFound(f"no article with id {article_id!r}")
            heirs = copies_by_original(self._store.copies_of(article_id)).get(article_id, ())
            if heirs:
                heir = replace(self._store.read_article(heirs[0].article_id), copy_of=None)
                self._write([heir], IngestReport())
                self._store.set_copy_of([c.article_id for c in heirs[1:]], heir.id)
            self._store.delete_article(article_id)
            self._store.touch()
            # The copy finder follows this through the change log at the next ingest (the token moved): no rebuild.

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
