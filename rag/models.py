"""Domain types shared by every stage. Offsets are always character offsets into `Article.text`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date


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

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        h = hashlib.sha256()
        for part in (self.title, self.text, self.source, self.published_at, self.url, self.body):
            h.update(repr(part).encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()[:16]


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

    @property
    def empty(self) -> bool:
        """No restriction (a preference alone restricts nothing)."""
        return not (self.sources or self.article_ids or self.date_from or self.date_to)

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
