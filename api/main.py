"""The FastAPI app: `create_app(settings)`; the lifespan builds the pipeline once onto app.state.

On first start the seed corpus is ingested in a background thread, so /health can answer
"loading" (503) meanwhile instead of the port staying closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from api import errors
from api.auth import KeyGuard
from api.metrics import Metrics
from api.middleware import RequestContext
from api.openapi import install_openapi
from api.routes import documents, health, openai_chat, query, web
from rag import __version__
from rag.errors import ConfigError, RagError
from rag.feeds import FeedWatcher
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

log = logging.getLogger("newsrag.api")


def _warm_up(app: FastAPI, pipeline: Pipeline, settings: Settings) -> None:
    """Start up until it succeeds: a failure (the store down, its disk full) is tried again with backoff (1 s,
    doubling to a minute) while `/health` says why it waits. A configuration error is not: it needs a person."""
    state = app.state
    delay, attempt = 1.0, 1
    seed: bool | None = None  # decided once: a retry goes on with a seed ingest that failed part-way
    while True:
        try:
            if seed is None:
                seed = settings.ingest_on_start and settings.seeds_dir.is_dir() and pipeline.is_empty()
            _start(app, pipeline, settings, seed)
            return
        except ConfigError as exc:
            state.startup_error = f"start-up failed: {exc}"
            log.error(state.startup_error)
            return
        except RagError as exc:
            state.startup_error = f"start-up failed (attempt {attempt}): {exc}; trying again in {delay:g} s"
            log.error(state.startup_error)
        if state.stopping.wait(delay):
            return
        delay, attempt = min(delay * 2, 60.0), attempt + 1


def _start(app: FastAPI, pipeline: Pipeline, settings: Settings, seed: bool) -> None:
    """Ingest the seeds if `seed` (the index was empty), then load the in-memory index; sets `ready`."""
    state = app.state
    if seed:

        def progress(done: int, total: int) -> None:
            state.progress = (done, total)

        report = pipeline.ingest([settings.seeds_dir], progress=progress)
        log.info("ingested %d articles (%d chunks) in %.1fs", report.articles, report.chunks, report.seconds)
    pipeline.load()
    pipeline.refresh_in_background()  # the upkeep thread follows the store: no question waits for a reload
    state.startup_error = None
    state.ready.set()
    state.upkeep = threading.Thread(target=_upkeep, args=(app, pipeline, settings), name="upkeep", daemon=True)
    state.upkeep.start()
    audit = threading.Thread(target=_audit_once, args=(app, pipeline, settings.stale_chunk_seconds), name="audit")
    audit.daemon = True
    audit.start()
    if settings.feed_urls:
        state.watcher = FeedWatcher(pipeline.feeds, settings.feed_urls, settings.feed_every_seconds)
        state.watcher.start()
        log.info("polling %d feeds every %gs", len(settings.feed_urls), settings.feed_every_seconds)


def _upkeep(app: FastAPI, pipeline: Pipeline, settings: Settings) -> None:
    """`Pipeline.maintain` every RAG_REFRESH_SECONDS (at least 1 s) until shutdown: this replica follows the
    store without waiting for a query, and lost passages or leftovers of failed writes are dealt with."""
    stop: threading.Event = app.state.stopping
    failing = ""
    while not stop.wait(max(settings.refresh_seconds, 1.0)):
        try:
            audit = pipeline.maintain()
        except RagError as exc:
            if str(exc) != failing:  # once per cause, not every pass
                log.warning("upkeep: %s", exc)
            failing = str(exc)
            continue
        except Exception:  # never let the thread die: this replica would stop following the store
            log.exception("upkeep failed; trying again")
            continue
        failing = ""
        if audit is not None and (audit.missing or audit.removed):
            log.warning("upkeep: rewrote %d articles whose passages were lost, removed %d leftover passages",
                        len(audit.missing), audit.removed)  # fmt: skip


def _audit_once(app: FastAPI, pipeline: Pipeline, delay: float) -> None:
    """Every article audited once, `delay` (RAG_STALE_CHUNK_SECONDS) after start, beside the upkeep loop: what a
    crash left goes. Not sooner: leftovers younger than that are kept anyway, and at 100k passages the scan keeps
    the store (and two cores) busy for half a minute, which would hold up following the store."""
    stop: threading.Event = app.state.stopping
    while not stop.wait(delay):
        delay = 60.0  # after a failure
        try:
            audit = pipeline.audit_all()
        except Exception as exc:
            log.warning("start-up audit: %s: %s; trying again in a minute", type(exc).__name__, exc)
            continue
        if audit.missing or audit.removed:
            log.warning("start-up audit: rewrote %d articles whose passages were lost, removed %d leftover passages",
                        len(audit.missing), audit.removed)  # fmt: skip
        return


def create_app(settings: Settings | None = None, pipeline: Pipeline | None = None) -> FastAPI:
    """The application; `pipeline` may be handed in (tests share one), else it is built from settings."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = pipeline or build_pipeline(settings)
        app.state.settings = settings
        app.state.pipeline = built
        app.state.ready = threading.Event()
        app.state.startup_error = None
        app.state.progress = None  # (done, total) of the start-up ingest
        app.state.watcher = None  # polls RAG_FEEDS once the index is ready
        app.state.upkeep = None
        app.state.stopping = threading.Event()
        app.state.probes = anyio.CapacityLimiter(4)  # /health's threads (api/routes/health.py)
        app.state.guard = KeyGuard(
            settings.keys, settings.require_key_for_read, settings.rate_limit_per_minute, settings.rate_limit_storage
        )
        worker = threading.Thread(target=_warm_up, args=(app, built, settings), name="warm-up", daemon=True)
        worker.start()
        yield
        app.state.stopping.set()
        worker.join(timeout=30)
        if app.state.upkeep is not None:
            app.state.upkeep.join(timeout=30)
            built.refresh_in_background(False)  # questions follow the store themselves again
        if app.state.watcher is not None:
            app.state.watcher.stop()
        if pipeline is None:  # built here: closed here
            built.close()

    app = FastAPI(
        title="newsrag",
        version=__version__,
        description="Questions over news articles, answered with cited source passages.",
        lifespan=lifespan,
        # No 307 to the slash-less path: its Location is built from the client's Host header, and behind a
        # TLS proxy it points at http://; a 404 that names the right path instead (api/errors.py).
        redirect_slashes=False,
    )
    errors.install(app)
    install_openapi(app)
    app.state.metrics = Metrics()
    app.add_middleware(
        RequestContext,
        metrics=app.state.metrics,
        body_limit=lambda path: (
            settings.max_upload_bytes + 65536 if path == "/documents/upload" else settings.max_body_bytes
        ),
        body_timeout=settings.body_timeout_seconds,
    )
    app.include_router(query.router)
    app.include_router(documents.router)
    app.include_router(health.router)
    app.include_router(openai_chat.router)
    app.include_router(web.router)
    web.mount(app)
    return app
