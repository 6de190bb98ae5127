"""Request and response models of the HTTP API (pydantic), converted from and to domain types."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from rag.feeds import FeedStatus
from rag.models import (
    Answer,
    ArticleRecord,
    Citation,
    Copy,
    Filters,
    Flag,
    IngestReport,
    ScoredChunk,
    Timeframe,
    Turn,
    iso_day,
)
from rag.settings import TOP_K_CEILING

MAX_QUESTION_CHARS = 1000  # RAG_MAX_QUESTION_CHARS may lower it
MAX_TURNS = 50  # messages of a conversation accepted with one question
MAX_TURN_CHARS = 8000  # a previous answer (with its sources list) may be longer than a question

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _day(value: object) -> object:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date written YYYY-MM-DD")  # pydantic would take 0 as 1970-01-01
    return iso_day(value)


# A date as every input writes it: YYYY-MM-DD, or a timestamp of that day (rag.loading.iso_day).
Day = Annotated[date, BeforeValidator(_day)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueryFilters(Strict):
    """Restrict retrieval to some sources, articles or a publication date range (inclusive), and prefer a date range."""

    sources: list[ShortText] = Field(default_factory=list, max_length=50)
    article_ids: list[ShortText] = Field(default_factory=list, max_length=200)
    date_from: Day | None = None
    date_to: Day | None = None
    prefer_from: Day | None = Field(None, description="Soft range: passages published from this day rank higher.")
    prefer_to: Day | None = Field(None, description="Soft range: passages published up to this day rank higher.")

    @model_validator(mode="after")
    def _range(self) -> QueryFilters:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from must not be after date_to")
        if self.prefer_from and self.prefer_to and self.prefer_from > self.prefer_to:
            raise ValueError("prefer_from must not be after prefer_to")
        return self

    def to_domain(self) -> Filters:
        return Filters(
            sources=tuple(self.sources),
            article_ids=tuple(self.article_ids),
            date_from=self.date_from,
            date_to=self.date_to,
            prefer_from=self.prefer_from,
            prefer_to=self.prefer_to,
        )


class HistoryTurn(Strict):
    """One earlier message of the conversation, used to make a follow-up question standalone."""

    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=MAX_TURN_CHARS)

    def to_domain(self) -> Turn:
        return Turn(self.role, self.content)


def usable_question(value: str, name: str) -> str:
    """`value` with its whitespace collapsed, or ValueError: one rule for /query and the chat endpoint."""
    value = " ".join(value.split())
    if not value:
        raise ValueError(f"{name} must not be empty or only whitespace")
    if not any(c.isalnum() for c in value):
        raise ValueError(f"{name} must contain a word (letters or digits)")
    return value


class QueryRequest(Strict):
    question: str = Field(
        ...,
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        json_schema_extra={"pattern": r"\w"},  # documented only: the validator below words the error
        description="A question in plain language.",
        examples=["What did Putin say about China's 12-point plan?"],
    )
    top_k: int | None = Field(
        None,
        ge=1,
        le=TOP_K_CEILING,
        description="How many passages to retrieve: 1 to the service's RAG_MAX_TOP_K (default 50; a larger "
        "value is a 422 naming top_k).",
    )
    filters: QueryFilters | None = None
    as_of: Day | None = Field(
        None,
        description="The day the question is asked (default: today in the service's time zone): 'this week', "
        "'yesterday' or 'in March' are read from it (returned as `resolved_dates`).",
        examples=["2023-03-22"],
    )
    include_retrieved: bool = Field(False, description="Also return the ranked retrieved passages.")
    history: list[HistoryTurn] = Field(
        default_factory=list,
        max_length=MAX_TURNS,
        description="Earlier turns, oldest first: a follow-up is rewritten into a standalone question "
        "(returned as `rewritten_question`) and retrieval uses that.",
    )

    @field_validator("question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return usable_question(value, "question")


class CopyOut(BaseModel):
    """Where else the story ran: another outlet's copy, stored but not searched."""

    article_id: str
    source: str
    url: str | None
    published_at: date | None

    @classmethod
    def of(cls, c: Copy) -> CopyOut:
        return cls(article_id=c.article_id, source=c.source, url=c.url, published_at=c.published_at)


class CitationOut(BaseModel):
    n: int = Field(description="The number used by the [n] marker in the answer.")
    article_id: str
    title: str
    source: str
    published_at: date | None
    url: str | None
    chunk_id: str
    passage: str = Field(description="The cited passage; equals the article text [start:end].")
    start: int
    end: int
    quote: str = Field(description="The exact sentence quoted; equals the article text [quote_start:quote_end].")
    quote_start: int
    quote_end: int
    also_published_by: list[CopyOut] = Field(
        default_factory=list, description="Other outlets that ran the same story (syndicated copies)."
    )

    @classmethod
    def of(cls, c: Citation) -> CitationOut:
        return cls(
            n=c.n,
            article_id=c.article_id,
            title=c.title,
            source=c.source,
            published_at=c.published_at,
            url=c.url,
            chunk_id=c.chunk_id,
            passage=c.passage,
            start=c.start,
            end=c.end,
            quote=c.quote,
            quote_start=c.quote_start,
            quote_end=c.quote_end,
            also_published_by=[CopyOut.of(x) for x in c.also_published_by],
        )


class RetrievedOut(BaseModel):
    rank: int
    article_id: str
    chunk_id: str
    title: str
    score: float = Field(
        description="Ranking score, higher first: for the top 10 the sentence rerank's score (fused score x 40 + "
        "the best sentence's match, about 1-3), below them the reciprocal-rank-fusion score (about 0.01-0.07)."
    )
    dense_rank: int | None
    lexical_rank: int | None
    start: int
    end: int
    text: str

    @classmethod
    def of(cls, s: ScoredChunk) -> RetrievedOut:
        c = s.chunk
        return cls(
            rank=s.rank,
            article_id=c.article_id,
            chunk_id=c.id,
            title=c.title,
            score=s.score,
            dense_rank=s.dense_rank,
            lexical_rank=s.lexical_rank,
            start=c.start,
            end=c.end,
            text=c.text,
        )


class FlagOut(BaseModel):
    """A problem verification found in one sentence of an LLM answer."""

    kind: str = Field(description="'unsupported', 'no_citation' or 'out_of_range_marker'.")
    sentence: int = Field(description="Which sentence of the answer, from 1.")
    text: str = Field(description="The sentence, without its markers.")
    markers: list[int] = Field(description="The passage numbers at fault, as the model wrote them.")
    detail: str

    @classmethod
    def of(cls, f: Flag) -> FlagOut:
        return cls(kind=f.kind, sentence=f.sentence, text=f.text, markers=list(f.markers), detail=f.detail)


class ResolvedDates(BaseModel):
    """The dates retrieval used for the question's time phrase, as resolved on `as_of`."""

    as_of: date
    phrase: str = Field(description="The words read ('this week', 'in 2022'); '' when the question names no time.")
    date_from: date | None = Field(description="The first day of the range preferred (inclusive); null: open.")
    date_to: date | None = Field(description="Its last day (inclusive; a day late, for time zones); null: open.")
    published_from: date | None = Field(
        description="An explicit calendar phrase ('in 2022', 'since June'): only articles published from this "
        "day (or undated) are searched. Null: nothing is ruled out."
    )

    @classmethod
    def of(cls, t: Timeframe) -> ResolvedDates:
        return cls(as_of=t.as_of, phrase=t.phrase, date_from=t.start, date_to=t.end, published_from=t.published_from)


class QueryResponse(BaseModel):
    question: str
    answer: str
    answerable: bool
    mode: str = Field(description="What produced the answer: 'extractive' (no LLM) or 'llm'.")
    confidence: float | None = Field(
        None,
        description="Extractive answers: the calibrated probability that the best-ranked sentence answers the "
        "question; the service refuses below RAG_REFUSE_BELOW. Null for LLM answers.",
    )
    citations: list[CitationOut]
    flags: list[FlagOut] = Field(default_factory=list, description="Sentences of an LLM answer that failed checks.")
    warnings: list[str] = Field(default_factory=list, description="E.g. why an LLM answer fell back to quoting.")
    timings_ms: dict[str, float]
    retrieved: list[RetrievedOut] | None = None
    rewritten_question: str | None = Field(
        None, description="With a `history`: the standalone question that was retrieved and answered."
    )
    resolved_dates: ResolvedDates | None = Field(None, description="The range the question's time phrase set.")

    @classmethod
    def of(cls, a: Answer, include_retrieved: bool, asked: str | None = None) -> QueryResponse:
        """The response; `asked` (given with a history) is the question as asked, `a.question` its rewrite."""
        return cls(
            question=asked if asked is not None else a.question,
            rewritten_question=a.question if asked is not None else None,
            answer=a.text,
            answerable=a.answerable,
            mode=a.mode,
            confidence=a.confidence,
            citations=[CitationOut.of(c) for c in a.citations],
            flags=[FlagOut.of(f) for f in a.flags],
            warnings=list(a.warnings),
            timings_ms=a.timings_ms,
            retrieved=[RetrievedOut.of(s) for s in a.retrieved] if include_retrieved else None,
            resolved_dates=ResolvedDates.of(a.timeframe) if a.timeframe else None,
        )


class DocumentOut(BaseModel):
    id: str
    title: str
    source: str
    source_file: str | None
    published_at: date | None
    url: str | None
    author: str | None = Field(None, description="The byline, where the page names one (HTML pages, feeds).")
    copy_of: str | None = Field(
        None, description="The stored article this is another outlet's copy of (it is not searched itself)."
    )
    chunk_count: int

    @classmethod
    def of(cls, r: ArticleRecord) -> DocumentOut:
        return cls(
            id=r.id,
            title=r.title,
            source=r.source,
            source_file=r.source_file,
            published_at=r.published_at,
            url=r.url,
            author=r.author,
            copy_of=r.copy_of,
            chunk_count=r.chunk_count,
        )


class DocumentList(BaseModel):
    count: int
    documents: list[DocumentOut]


class IngestProgress(BaseModel):
    done: int = Field(description="Articles ingested so far.")
    total: int = Field(description="Articles to ingest.")


class FeedHealth(BaseModel):
    url: str
    last_poll: datetime | None
    last_success: datetime | None
    last_error: str | None
    polls: int
    errors: int
    articles_added: int
    articles_replaced: int

    @classmethod
    def of(cls, status: FeedStatus) -> FeedHealth:
        def when(seconds: float | None) -> datetime | None:
            return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None

        return cls(
            url=status.url,
            last_poll=when(status.last_poll),
            last_success=when(status.last_success),
            last_error=status.last_error,
            polls=status.polls,
            errors=status.errors,
            articles_added=status.articles_added,
            articles_replaced=status.articles_replaced,
        )


class Health(BaseModel):
    status: str = Field(description="'ready', 'loading' or 'unavailable'.")
    detail: str | None = None
    articles: int | None = None
    chunks: int | None = None
    progress: IngestProgress | None = Field(None, description="While loading: the start-up ingest so far.")
    feeds: list[FeedHealth] | None = Field(None, description="The feeds this service polls (RAG_FEEDS), if any.")


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details: the body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    written: list[str] | None = Field(
        None, description="A write that failed part-way: the articles it had already stored, whole and live."
    )
    removed: list[str] | None = Field(None, description="The same: the articles it had already removed.")


ARTICLE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"


class _ArticleFieldsIn(Strict):
    """The fields every way of sending an article shares, and their rules."""

    id: str = Field(..., pattern=ARTICLE_ID_PATTERN, description="Letters, digits and . _ : - (max 128).")
    title: str = Field(..., min_length=1, max_length=500)
    body: str = Field(..., min_length=1, max_length=2_000_000)
    published_at: Day | None = None
    url: str | None = Field(None, max_length=2000, pattern=r"^https?://\S+$")

    @field_validator("title", "body", "source", check_fields=False)
    @classmethod
    def _has_text(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty or only whitespace")
        return value


class ArticleIn(_ArticleFieldsIn):
    """One article to add or replace (same id, changed content = replace)."""

    source: str = Field("api", min_length=1, max_length=200)


class ArticleBatch(Strict):
    articles: list[ArticleIn] = Field(..., min_length=1, max_length=10000)

    @field_validator("articles")
    @classmethod
    def _unique_ids(cls, value: list[ArticleIn]) -> list[ArticleIn]:
        seen: set[str] = set()
        for item in value:
            if item.id in seen:
                raise ValueError(f"id {item.id!r} appears more than once; send one version of each article")
            seen.add(item.id)
        return value


class JsonlArticleIn(_ArticleFieldsIn):
    """One line of an uploaded JSONL corpus: ArticleIn's rules, with `text` standing for `body`, a timestamp
    for the date, no default source (the file's name is used) and other keys (authors, ...) ignored."""

    model_config = ConfigDict(extra="ignore")

    body: str = Field(..., min_length=1, max_length=2_000_000, validation_alias=AliasChoices("body", "text"))
    source: str | None = Field(None, min_length=1, max_length=200)


def _document_kind(value: object) -> str:
    return "batch" if isinstance(value, dict) and "articles" in value else "article"


# One article, or {"articles": [...]}: told apart by the "articles" key, so errors name one shape.
DocumentsIn = Annotated[
    Annotated[ArticleIn, Tag("article")] | Annotated[ArticleBatch, Tag("batch")],
    Discriminator(_document_kind),
]
UNION_TAGS = ("article", "batch")


class SkippedItem(BaseModel):
    item: str = Field(description="The feed entry or URL that was not stored.")
    reason: str


class IngestResult(BaseModel):
    articles: int
    added: int
    updated: int
    unchanged: int
    removed: int
    folded: int = Field(0, description="Near-duplicates of a stored article, kept as its other copies.")
    chunks: int
    ids: list[str]
    skipped: list[SkippedItem] = Field(default_factory=list, description="What a feed held that was not stored.")

    @classmethod
    def of(cls, report: IngestReport) -> IngestResult:
        return cls(
            articles=report.articles,
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            removed=report.removed,
            folded=report.folded,
            chunks=report.chunks,
            ids=report.ids,
            skipped=[SkippedItem(item=what, reason=why) for what, why in report.skipped],
        )


class UrlIn(Strict):
    """A page to fetch and store as one article (or a feed, whose new entries are stored)."""

    url: str = Field(..., max_length=2000, pattern=r"^https?://\S+$", description="An http(s) URL.")
    id: str | None = Field(
        None, pattern=ARTICLE_ID_PATTERN, description="The article's id (default: made from the URL); pages only."
    )


class DocumentDetail(DocumentOut):
    text: str = Field(description="The article text; citation offsets index into it.")
    also_published_by: list[CopyOut] = Field(default_factory=list, description="Other outlets' copies of it.")

    @classmethod
    def of_record(cls, r: ArticleRecord, copies: Sequence[Copy] = ()) -> DocumentDetail:
        return cls(
            **DocumentOut.of(r).model_dump(), text=r.text or "", also_published_by=[CopyOut.of(c) for c in copies]
        )
