"""Citations: numbered [n] references from answer sentences to the exact text they quote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.models import Chunk, Citation, Span


@dataclass(frozen=True, slots=True)
class Quote:
    """One sentence the answer uses, located in the passage it came from."""

    chunk: Chunk
    sentence: Span


def quote_text(chunk: Chunk, span: Span) -> str:
    """The sentence's exact text, cut from the passage by offsets (article coordinates)."""
    if not (chunk.start <= span.start <= span.end <= chunk.end):
        raise ValueError(f"sentence {span} lies outside passage {chunk.id} [{chunk.start}, {chunk.end})")
    return chunk.text[span.start - chunk.start : span.end - chunk.start]


def build_citations(quotes: Sequence[Quote]) -> list[Citation]:
    """Citation n (from 1) for the n-th quote; the same sentence quoted twice shares one number."""
    citations: list[Citation] = []
    seen: dict[tuple[str, int, int], int] = {}
    for quote in quotes:
        key = (quote.chunk.article_id, quote.sentence.start, quote.sentence.end)
        if key in seen:
            continue
        seen[key] = len(citations) + 1
        chunk = quote.chunk
        citations.append(
            Citation(
                n=len(citations) + 1,
                article_id=chunk.article_id,
                title=chunk.title,
                source=chunk.source,
                published_at=chunk.published_at,
                url=chunk.url,
                chunk_id=chunk.id,
                passage=chunk.text,
                start=chunk.start,
                end=chunk.end,
                quote=quote_text(chunk, quote.sentence),
                quote_start=quote.sentence.start,
                quote_end=quote.sentence.end,
            )
        )
    return citations


def compose(citations: Sequence[Citation]) -> str:
    """The answer text: each quoted sentence followed by its marker."""
    return " ".join(f"{c.quote} [{c.n}]" for c in citations)
