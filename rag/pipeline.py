"""Wiring: `build_pipeline(settings)` is the one place every component is constructed.

The CLI, the HTTP app and the evaluation harness all go through a `Pipeline`:
question -> retrieval -> answering -> citations -> Answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rag.answering import ExtractiveAnswerer, GenerativeAnswerer, stream_text
from rag.chunking import Chunker
from rag.conversation import standalone_question
from rag.deadlines import StoreGate
from rag.disk import DiskGuard
from rag.embedding import Embedder, build_embedder
from rag.errors import InvalidDocument, InvalidQuestion, ProviderError, RagError
from rag.extraction import ExtractionPolicy
from rag.feeds import FeedLog, FeedPoller, is_feed_name
from rag.fetching import Fetcher, FetchPolicy, page_article, url_article_id
from rag.generation import OpenAIGenerator, build_rewrite_messages
from rag.indexing import Indexer, Progress, make_prefix
from rag.lexical import LexicalIndex
from rag.loading import RowReader, article_from_fields, corpus_row, upload_articles, within_limit
from rag.models import (
    Answer,
    AnswerEvent,
    Article,
    ArticleFields,
    ArticleRecord,
    Copy,
    Filters,
    IndexSize,
    IngestReport,
    Timeframe,
    Turn,
)
from rag.policies import AnswerPolicy, ReloadPolicy, RerankPolicy, RetrievalPolicy
from rag.reranking import CrossEncoder, SentenceRanker
from rag.retrieval import HybridRetriever, Retrieval
from rag.settings import Settings
from rag.storage import Audit, ChromaStore
from rag.syndication import SyndicationPolicy
from rag.timeframe import TimeframePolicy
from rag.timeframe import resolve as resolve_timeframe
from rag.verification import Verifier

log = logging.getLogger("newsrag.pipeline")


def chroma_client_factory(settings: Settings) -> Any:
    """A callable that opens the configured Chroma client (telemetry off in both modes)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_host:
        host, port, ssl = settings.chroma_host, settings.chroma_port, settings.chroma_ssl
        timeout = settings.store_timeout_seconds

        def connect() -> Any:
            client = chromadb.HttpClient(host=host, port=port, ssl=ssl, settings=chroma_settings)
            _limit_http_wait(client, timeout)
            return client

        return connect
    path = settings.chroma_path
    return lambda: chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def _limit_http_wait(client: Any, seconds: float) -> None:
    """chromadb builds its HTTP session with no timeout: a hung server would hold the store's thread forever.
    The gate's deadline answers the request; this frees the thread soon after (a second later)."""
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(seconds + 1.0)


class Pipeline:
    """The service's operations on one index, independent of how they are invoked."""

    def __init__(
        self,
        settings: Settings,
        store: ChromaStore,
        embedder: Embedder,
        indexer: Indexer,
        retriever: HybridRetriever,
        ranker: SentenceRanker,
        answerer: ExtractiveAnswerer,
        generative: GenerativeAnswerer | None = None,
        fetcher: Fetcher | None = None,
        feed_log: FeedLog | None = None,
        extraction: ExtractionPolicy | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.indexer = indexer
        self.retriever = retriever
        self.ranker = ranker
        self.answerer = answerer
        self.generative = generative
        self.extraction = extraction or ExtractionPolicy()
        self._recheck: dict[str, float] = {}  # article id -> when its young leftovers are stale
        self._pruned_at = 0.0  # time.monotonic() of the last pruning of the change log
        self.timeframe_policy = TimeframePolicy(
            recent_days=settings.recent_days, default_recent=settings.recent_days > 0
        )
        self.fetcher = fetcher or Fetcher()
        self.feeds = FeedPoller(self.fetcher, self.ingest_articles, feed_log or FeedLog(None), self.extraction)

    def ingest(self, paths: Iterable[Path], progress: Progress | None = None, dry_run: bool = False) -> IngestReport:
        report = self.indexer.ingest_paths(paths, progress=progress, dry_run=dry_run)
        if report.changed and not dry_run:
            self._show_writes()
        return report

    def ingest_articles(
        self,
        articles: list[Article],
        sync_files: set[str] | None = None,
        progress: Progress | None = None,
        dry_run: bool = False,
    ) -> IngestReport:
        report = self.indexer.ingest(articles, progress=progress, sync_files=sync_files, dry_run=dry_run)
        if report.changed and not dry_run:
            self._show_writes()
        return report

    def ingest_url(
        self, url: str, article_id: str | None = None, dry_run: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """Fetch a URL: a page becomes one article (id from the URL unless given), a feed is polled (its new
        entries become articles). FetchRefused / FetchFailed / InvalidDocument say why nothing was stored."""
        fetched = self.fetcher.get(url)
        if fetched.kind == "feed":
            if article_id is not None:
                raise InvalidDocument(f"{url}: a feed, not an article page; an id names one article")
            poll = self.feeds.take(url, fetched, dry_run=dry_run, progress=progress)
            return poll.as_ingest_report()
        article = page_article(fetched, article_id or url_article_id(url), self.extraction)
        within_limit(article.id, article.text, self.settings.max_article_chars, "page")
        return self.ingest_articles([article], dry_run=dry_run)

    def ingest_sources(
        self, sources: Sequence[str], dry_run: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        """`rag ingest`: files and folders, feed files (.xml, .rss, .atom) and http(s) URLs of pages or feeds. A
        URL or feed that cannot be had is skipped with its reason; the others go on."""
        report = IngestReport()
        paths: list[Path] = []
        for source in sources:
            if source.startswith(("http://", "https://")):
                try:
                    report = report.merge(self.ingest_url(source, dry_run=dry_run, progress=progress))
                except RagError as exc:
                    report.skipped.append((source, str(exc)))
            elif is_feed_name(source):
                path = Path(source)
                try:
                    raw = path.read_bytes()
                except OSError as exc:
                    raise InvalidDocument(f"cannot read {path}: {exc.strerror}") from exc
                poll = self.feeds.read_file(raw, path.name, dry_run=dry_run, progress=progress)
                report = report.merge(poll.as_ingest_report())
            else:
                paths.append(Path(source))
        if paths or not sources:
            report = report.merge(self.ingest(paths or [self.settings.seeds_dir], progress, dry_run=dry_run))
        return report

    def add(self, items: Sequence[ArticleFields], max_chars: int) -> IngestReport:
        """Ingest articles callers describe (POST /documents), each held to `max_chars`."""
        return self.ingest_articles([article_from_fields(item, max_chars) for item in items])

    def upload(self, raw: bytes, name: str, max_chars: int, read_row: RowReader = corpus_row) -> IngestReport:
        """Ingest an uploaded file (`rag.loading.upload_articles`): re-uploading a name replaces its articles
        and removes those it no longer holds."""
        return self.ingest_articles(upload_articles(raw, name, max_chars, read_row), sync_files={name})

    def delete(self, article_id: str) -> None:
        self.indexer.delete(article_id)
        self._show_writes()

    def _show_writes(self) -> None:
        """Load what was just written, so that this replica answers from it at once. The write itself is done:
        if the store fails now, the next refresh (upkeep, or the next question) loads it instead."""
        try:
            self.retriever.refresh(force=True)
        except RagError as exc:
            log.warning("written, but not loaded yet: %s", exc)

    def standalone(self, question: str, history: Sequence[Turn]) -> str:
        """`question` rewritten to stand alone given the conversation before it (unchanged without history).

        With an LLM configured it writes the rewrite; if it fails or sends something unusable (empty,
        several lines, too long) the deterministic rule of rag.conversation does, as it does offline.
        A rewrite longer than a question may be falls back to the question as asked.
        """
        question = " ".join(question.split())
        if not any(turn.role == "user" and turn.content.strip() for turn in history):
            return question
        rewritten = ""
        if self.generative is not None:
            messages = build_rewrite_messages(question, [(t.role, t.content) for t in history])
            try:
                rewritten = self.generative.generator.complete(messages)
            except ProviderError as exc:
                log.warning("question rewrite by the LLM failed, using the rule: %s", exc)
            if "\n" in rewritten or not rewritten.strip(" ?.!"):
                rewritten = ""
        rewritten = " ".join(rewritten.split()) or standalone_question(question, history)
        return rewritten if len(rewritten) <= self.settings.max_question_chars else question

    def today(self) -> date:
        """Today in the service's time zone (RAG_TIMEZONE): the default `as_of` of a question."""
        return datetime.now(ZoneInfo(self.settings.timezone)).date()

    def ask(
        self, question: str, top_k: int | None = None, filters: Filters | None = None, as_of: date | None = None
    ) -> Answer:
        """Answer one question from the index, asked on `as_of` (default: today); raises InvalidQuestion for
        unusable input."""
        for event in self.stream(question, top_k, filters, as_of):
            if isinstance(event, Answer):
                return event
        raise AssertionError("an answer stream always ends with its Answer")  # pragma: no cover

    def stream(
        self, question: str, top_k: int | None = None, filters: Filters | None = None, as_of: date | None = None
    ) -> Iterator[AnswerEvent]:
        """Pieces of the answer's text as they are produced, then the Answer (which is authoritative).

        The question's time phrase ("this week", "in 2022"; none: recent news) is resolved on `as_of` (default:
        today) into a preferred range or a filter (rag.timeframe), where `filters` set none of that kind.

        Validation and retrieval run now, before the first piece, so their errors (InvalidQuestion,
        StoreUnavailable) reach the caller before any streaming starts.
        """
        question = " ".join(question.split())
        if not question:
            raise InvalidQuestion("question: must not be empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidQuestion(f"question: must be at most {self.settings.max_question_chars} characters long")
        k = top_k or self.settings.top_k
        if not 1 <= k <= self.settings.max_top_k:
            raise InvalidQuestion(f"top_k: must be between 1 and {self.settings.max_top_k}")
        started = time.perf_counter()
        frame = resolve_timeframe(question, as_of or self.today(), self.timeframe_policy)
        if frame is not None:
            filters = frame.filters(filters)
        retrieval = self.retriever.retrieve(question, max(k, self.ranker.policy.passages), filters)
        return self._answer(question, k, retrieval, started, frame)

    def _answer(
        self, question: str, k: int, retrieval: Retrieval, started: float, frame: Timeframe | None = None
    ) -> Iterator[AnswerEvent]:
        t_rank = time.perf_counter()
        parsed = retrieval.question
        ranking = self.ranker.rank(parsed, retrieval.question_vector, retrieval.hits, retrieval.snapshot)
        hits = ranking.passages(retrieval.hits) if self.ranker.policy.reorder_passages else retrieval.hits
        t_answer = time.perf_counter()
        if self.generative is None:
            events = stream_text(self.answerer.answer(parsed, ranking, hits))
        else:
            events = self.generative.stream(parsed, ranking, hits, retrieval.snapshot, k)
        for event in events:
            if not isinstance(event, Answer):
                yield event
                continue
            done = time.perf_counter()
            copies = retrieval.snapshot.copies
            if copies:
                event.citations = [replace(c, also_published_by=copies.get(c.article_id, ())) for c in event.citations]
            event.retrieved = hits[:k]
            event.timeframe = frame
            event.timings_ms = {
                **{key: round(value, 3) for key, value in retrieval.timings_ms.items()},
                "rerank": round((t_answer - t_rank) * 1000, 3),
                **event.timings_ms,
                "answer": round((done - t_answer) * 1000, 3),
                "total": round((done - started) * 1000, 3),
            }
            yield event

    def maintain(self) -> Audit | None:
        """One pass of upkeep (`rag serve` runs one every RAG_REFRESH_SECONDS, in the background): load what
        changed in the store, drop what this process's failed writes left, then audit the articles that changed
        (and those with leftovers due): a version whose passages were lost is written again, leftovers of failed
        or racing writes go once stale."""
        self.retriever.refresh()
        if self.store.drop_abandoned():
            self.retriever.refresh(force=True)
        now = time.monotonic()
        if now - self._pruned_at >= self.retriever.reload.overlap_seconds:
            self.store.prune_changes()
            self._pruned_at = now
        due = {i for i, t in self._recheck.items() if t <= now}
        ids = self.retriever.take_changed() | due
        if not ids:
            return None
        audit = self.indexer.check(sorted(ids))
        for i in due:
            self._recheck.pop(i, None)
        for i in audit.young:
            self._recheck[i] = now + self.store.stale_after
        if audit.missing or audit.removed:
            self.retriever.refresh(force=True)
            self.retriever.take_changed()  # what this pass wrote is sound
        return audit

    def audit_all(self) -> Audit:
        """`maintain`'s audit over every article (a full scan of the passages: `rag serve` runs it once, after
        start): leftovers of a crash go, lost passages are written again."""
        audit = self.indexer.check(None)
        if audit.missing or audit.removed:
            self.retriever.refresh(force=True)
        return audit

    def refresh_in_background(self, on: bool = True) -> None:
        """From now on questions answer from the snapshot in memory and never reload it themselves: whoever calls
        this keeps it current with `maintain` (`rag serve`'s upkeep thread; `on=False` when it stops). A write
        through this replica still loads what it wrote before it answers."""
        self.retriever.refresh_on_query = not on

    def close(self) -> None:
        """Let go of what this pipeline holds on disk (the lexical index's directory), and of the store's threads
        (a call still queued is not made)."""
        self.retriever.close()
        self.store.gate.close()

    def load(self) -> IndexSize:
        """Load the in-memory index from the store now (at start-up), whatever was loaded before, and ready what the
        first write needs (seconds at half a million passages: before /health says ready, not in the first POST)."""
        snapshot = self.retriever.refresh(force=True)
        self.indexer.warm()  # the copy finder (every stored signature): built now, not by the first write
        return IndexSize(snapshot.article_count, len(snapshot))

    def health(self) -> IndexSize:
        """Check that the store answers and the in-memory index is current (reloading it if the store
        changed); raises StoreUnavailable when it does not answer. With the disk full, questions are still
        answered from memory, and the store is left alone: `writes_refused` says so."""
        full = self.store.disk_full()
        if full is None:
            self.store.ping()
        snapshot = self.retriever.current()
        return IndexSize(snapshot.article_count, len(snapshot), full)

    def index_size(self) -> IndexSize | None:
        """What the in-memory index holds now, without asking the store (None before it is loaded)."""
        snapshot = self.retriever.snapshot
        return None if snapshot is None else IndexSize(snapshot.article_count, len(snapshot))

    def documents(self) -> list[ArticleRecord]:
        return sorted(self.store.article_records().values(), key=lambda r: r.id)

    def copies(self, article_id: str) -> tuple[Copy, ...]:
        """Other outlets' copies of a stored article, as the in-memory index knows them."""
        snapshot = self.retriever.snapshot
        return snapshot.copies.get(article_id, ()) if snapshot is not None else ()

    def document(self, article_id: str) -> ArticleRecord:
        return self.store.get_article(article_id)

    def is_empty(self) -> bool:
        return self.store.count_chunks() == 0


@dataclass(frozen=True, slots=True)
class Policies:
    retrieval: RetrievalPolicy
    rerank: RerankPolicy
    answer: AnswerPolicy


def policies(settings: Settings) -> Policies:
    """The policies with what `settings` override of their defaults."""
    retrieval = RetrievalPolicy(
        candidates=settings.candidates,
        rrf_k=settings.rrf_k,
        dense_weight=settings.dense_weight,
        lexical_weight=settings.lexical_weight,
        prefer_weight=settings.prefer_weight,
    )
    rerank = RerankPolicy(
        passages=settings.rerank_passages,
        shortlist=settings.rerank_sentences,
        budget_tokens=settings.rerank_budget_tokens,
    )
    answer = AnswerPolicy(max_sentences=settings.answer_max_sentences)
    if settings.refuse_below is not None:
        which = "cheap" if settings.reranker == "none" else "cross_encoder"
        scale = replace(getattr(answer, which), refuse_below=settings.refuse_below)
        answer = replace(answer, **{which: scale})
    return Policies(retrieval, rerank, answer)


def build_pipeline(settings: Settings) -> Pipeline:
    """Construct every component from settings. Opens no connection until first use."""
    embedder = build_embedder(settings)
    store = ChromaStore(
        chroma_client_factory(settings),
        settings.collection,
        embedder.dim,
        embedder.name,
        stale_after=settings.stale_chunk_seconds,
        change_log_seconds=settings.change_log_seconds,
        gate=StoreGate(settings.store_timeout_seconds, settings.store_threads),
        disk=None if settings.chroma_host else DiskGuard(settings.chroma_path, settings.min_free_disk_mb),
    )
    prefix = make_prefix(settings.embed_prefix)
    chunker = Chunker(
        embedder.count_tokens,
        max_tokens=min(settings.chunk_tokens, settings.embed_max_tokens),
        overlap_sentences=settings.chunk_overlap_sentences,
        prefix=prefix,
    )
    syndication = SyndicationPolicy(threshold=settings.fold_threshold, enabled=settings.fold_copies)
    tuned = policies(settings)
    indexer = Indexer(store, embedder, chunker, prefix, syndication=syndication, reload=ReloadPolicy())
    retriever = HybridRetriever(
        store,
        embedder,
        tuned.retrieval,
        refresh_seconds=settings.refresh_seconds,
        lexical=LexicalIndex(settings.lexical_path),
        reload=ReloadPolicy(),
    )
    answerer = ExtractiveAnswerer(tuned.answer)
    fetcher = Fetcher(
        FetchPolicy(
            timeout_seconds=settings.fetch_timeout_seconds,
            max_bytes=settings.fetch_max_bytes,
            allow_private=settings.fetch_allow_private,
            allow_networks=settings.fetch_networks,
            user_agent=settings.fetch_user_agent,
        )
    )
    return Pipeline(
        settings,
        store,
        embedder,
        indexer,
        retriever,
        build_ranker(settings, tuned.rerank),
        answerer,
        build_generative(settings, embedder, answerer),
        fetcher=fetcher,
        feed_log=FeedLog(settings.data_dir / "feeds.json"),
        extraction=ExtractionPolicy(min_words=settings.extract_min_words),
    )


def build_ranker(settings: Settings, policy: RerankPolicy) -> SentenceRanker:
    """The reranking stage: the cross-encoder (loaded once, here) unless RAG_RERANKER=none."""
    if settings.reranker == "none":
        return SentenceRanker(policy)
    return SentenceRanker(policy, CrossEncoder(threads=settings.rerank_threads, device=settings.embed_device))


def build_generative(settings: Settings, embedder: Embedder, fallback: ExtractiveAnswerer) -> GenerativeAnswerer | None:
    """The LLM answerer when RAG_LLM asks for one (None: extractive answers only, no network)."""
    if settings.llm == "none":
        return None
    generator = OpenAIGenerator(
        model=settings.llm_model or "",
        api_key=settings.openai_api_key,
        base_url=settings.llm_base_url,
        timeout=settings.llm_timeout,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
    )
    return GenerativeAnswerer(
        generator,
        Verifier(embedder),
        fallback,
        passages=settings.llm_passages,
        max_sentences=settings.answer_max_sentences,
        system_role=settings.llm_system_role,
    )
