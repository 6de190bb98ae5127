"""Domain types shared by every stage. Offsets are always character offsets into `Article.text`."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal


@dataclass(frozen=True, slots=True)
class Span:
    """A half-open character range [start, end) of an article's text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Article:
    """One news article: its exact text as found in its source, and what we know about it.

    `text` is a verbatim slice of the source file (`source_start`/`source_end`), so offsets
    into `text` can be checked against the file. `body` lists the spans of `text` that hold
    article prose: the headline and dropped boilerplate (link lists, captions) lie outside it.
    """

    id: str
    title: str
    text: str
    body: tuple[Span, ...]
    source: str
    source_file: str | None = None
    source_start: int = 0
    source_end: int = 0
    published_at: date | None = None
    url: str | None = None
    author: str | None = None
    # How the index holds it, not what it says (outside the content hash): the stored article this one is a
    # syndicated copy of (then it has no chunks), and the MinHash signature copies are found by. Not compared.
    copy_of: str | None = field(default=None, compare=False)
    signature: str | None = field(default=None, compare=False)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        h = hashlib.sha256()
        parts: tuple[object, ...] = (self.title, self.text, self.source, self.published_at, self.url, self.body)
        if self.author:  # absent from the hash when unknown, so articles stored before authors keep theirs
            parts += (self.author,)
        for part in parts:
            h.update(repr(part).encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ArticleFields:
    """An article as a caller describes it (a JSONL line, a POST /documents body): its headline given apart
    from its body, which becomes the article's text."""

    id: str
    title: str
    body: str
    source: str | None = None
    published_at: date | None = None
    url: str | None = None


@dataclass(slots=True)
class IngestReport:
    """What one ingest did; `embedded_tokens` counts passage tokens sent to the model; `ids` are the ids of
    the articles it was given, in order."""

    articles: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    folded: int = 0  # near-duplicates of a stored article (another outlet's copy), kept beside it, not searched
    chunks: int = 0
    embedded_tokens: int = 0
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, URL or feed entry; why it was skipped)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed or self.folded)

    def merge(self, other: IngestReport) -> IngestReport:
        """This report and `other`'s, summed (several sources of one `rag ingest`)."""
        return IngestReport(
            articles=self.articles + other.articles,
            added=self.added + other.added,
            updated=self.updated + other.updated,
            unchanged=self.unchanged + other.unchanged,
            removed=self.removed + other.removed,
            folded=self.folded + other.folded,
            chunks=self.chunks + other.chunks,
            embedded_tokens=self.embedded_tokens + other.embedded_tokens,
            seconds=self.seconds + other.seconds,
            files=[*self.files, *other.files],
            ids=[*self.ids, *other.ids],
            skipped=[*self.skipped, *other.skipped],
        )


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation: `role` is "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of one article, sized for the embedding model. `text == article.text[start:end]`."""

    id: str
    article_id: str
    article_hash: str
    index: int
    text: str
    start: int
    end: int
    sentences: tuple[Span, ...]
    title: str
    source: str
    published_at: date | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An article as the store knows it (the text is fetched only on demand)."""

    id: str
    title: str
    source: str
    source_file: str | None
    published_at: date | None
    url: str | None
    content_hash: str
    chunk_count: int
    text: str | None = None
    author: str | None = None
    copy_of: str | None = None
    signature: str | None = None


_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_day(value: str) -> date:
    """A day written YYYY-MM-DD, or the day of a timestamp ('2022-06-13T10:00:00Z', '2022-06-13 10:00').

    One rule for the CLI's corpus reader and every date the API takes, so a file is accepted by both
    or by neither. Raises ValueError for anything else ('20220613', '2024-02-30', 'June').
    """
    value = value.strip()
    day = value[:10] if len(value) > 10 and value[10] in "T " else value
    if not _ISO_DAY.match(day):
        raise ValueError(f"{value[:40]!r} is not a date written YYYY-MM-DD")
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not a date written YYYY-MM-DD") from None


def day_number(value: date) -> int:
    """Dates as integers (20220613): Chroma compares numbers, not strings."""
    return value.year * 10000 + value.month * 100 + value.day


@dataclass(frozen=True, slots=True)
class Condition:
    """One restriction of `Filters` on a chunk's metadata: `field` is "source", "article_id" or
    "published_day" (`day_number`; undated chunks have none and fail every date condition unless
    `or_undated`)."""

    field: Literal["source", "article_id", "published_day"]
    op: Literal["in", "gte", "lte"]
    value: tuple[str, ...] | int
    or_undated: bool = False


@dataclass(frozen=True, slots=True)
class Filters:
    """Restrictions a caller may put on retrieval, and a preference.

    `date_from`/`date_to` keep only passages published in that range. `prefer_from`/`prefer_to` is a
    soft range: passages published in it rank higher, the others are still found ("this week"
    questions whose story began earlier).
    """

    sources: tuple[str, ...] = ()
    article_ids: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    prefer_from: date | None = None
    prefer_to: date | None = None
    undated: bool = False  # undated passages pass date_from/date_to (a range read from the question's words)

    @property
    def empty(self) -> bool:
        """No restriction (a preference alone restricts nothing)."""
        return not (self.sources or self.article_ids or self.date_from or self.date_to)

    def conditions(self) -> Iterator[Condition]:
        """What these filters mean, once: Chroma's `where` (rag.storage) and the snapshot's mask
        (rag.snapshot) are both written from it."""
        if self.sources:
            yield Condition("source", "in", tuple(self.sources))
        if self.article_ids:
            yield Condition("article_id", "in", tuple(self.article_ids))
        if self.date_from:
            yield Condition("published_day", "gte", day_number(self.date_from), self.undated)
        if self.date_to:
            yield Condition("published_day", "lte", day_number(self.date_to), self.undated)

    @property
    def preferred(self) -> Filters | None:
        """These filters narrowed to the preferred range (None without a preference)."""
        if not (self.prefer_from or self.prefer_to):
            return None
        low = max((d for d in (self.date_from, self.prefer_from) if d), default=None)
        high = min((d for d in (self.date_to, self.prefer_to) if d), default=None)
        return Filters(self.sources, self.article_ids, low, high)


@dataclass(slots=True)
class ScoredChunk:
    """A retrieved passage with its fused score and the rank each retriever gave it (None = not found)."""

    chunk: Chunk
    score: float
    rank: int
    dense_rank: int | None = None
    lexical_rank: int | None = None


@dataclass(frozen=True, slots=True)
class Timeframe:
    """What a question's time phrase means, asked on `as_of`: the range it names (`start`..`end`, inclusive,
    either end open), preferred; and for an explicit calendar phrase ("in 2022", "since June") `published_from`,
    a hard lower bound on publication (reports of a period are published in it or later, so no upper bound is
    ever read from a question). `phrase`: the words read ("" when the question named no time and recent news
    is preferred)."""

    start: date | None
    end: date | None
    phrase: str
    as_of: date
    published_from: date | None = None

    @property
    def hard(self) -> bool:
        return self.published_from is not None

    def filters(self, given: Filters | None) -> Filters:
        """`given` with this timeframe where the caller set no range of that kind (the caller's range wins). The
        hard bound lets undated articles through: they cannot be placed in time, so they are not ruled out."""
        base = given or Filters()
        if not (base.prefer_from or base.prefer_to):
            base = replace(base, prefer_from=self.start, prefer_to=self.end)
        if self.published_from is not None and not (base.date_from or base.date_to):
            base = replace(base, date_from=self.published_from, undated=True)
        return base


@dataclass(frozen=True, slots=True)
class Copy:
    """Where else a story ran: another outlet's copy of an article, stored beside it but not searched."""

    article_id: str
    source: str
    url: str | None
    published_at: date | None


@dataclass(frozen=True, slots=True)
class Citation:
    """What an `[n]` marker in an answer points at: a passage and the exact sentence quoted from it."""

    n: int
    article_id: str
    title: str
    source: str
    published_at: date | None
    url: str | None
    chunk_id: str
    passage: str
    start: int
    end: int
    quote: str
    quote_start: int
    quote_end: int
    also_published_by: tuple[Copy, ...] = ()


@dataclass(frozen=True, slots=True)
class Flag:
    """A problem verification found in one sentence of a generated answer.

    `kind`: "unsupported" (the cited passage does not say it), "no_citation" (no [n] marker),
    "out_of_range_marker" (a marker naming no passage the model was given; removed from the text).
    `sentence` counts the answer's sentences from 1; `markers` are the model's own passage numbers.
    """

    kind: str
    sentence: int
    text: str
    markers: tuple[int, ...] = ()
    detail: str = ""


@dataclass(slots=True)
class Answer:
    """The result of one question."""

    question: str
    text: str
    answerable: bool
    citations: list[Citation]
    retrieved: list[ScoredChunk] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: str = "extractive"
    flags: list[Flag] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # The calibrated probability that the best-ranked sentence answers the question (extractive answers).
    confidence: float | None = None
    # The dates the question's time phrase resolved to (rag.timeframe), as retrieval used them.
    timeframe: Timeframe | None = None


@dataclass(frozen=True, slots=True)
class IndexSize:
    """How much the in-memory index holds; `writes_refused` says why writes are refused while questions are
    still answered (a full disk)."""

    articles: int
    chunks: int
    writes_refused: str | None = None


# What an answer stream yields: pieces of text as they are produced, then the finished Answer.
AnswerEvent = str | Answer
