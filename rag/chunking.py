"""Chunking: Article -> sentence-aligned Chunks that fit the embedding model's window.

Every chunk is a verbatim slice of its article (`article.text[start:end] == chunk.text`) and
never crosses dropped boilerplate. Sentence spans are kept so answers can quote exactly.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Sequence

from rag.models import Article, Chunk, Span

TokenCounter = Callable[[Sequence[str]], list[int]]

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sen",
        "rep",
        "gov",
        "gen",
        "col",
        "lt",
        "sgt",
        "capt",
        "cmdr",
        "adm",
        "st",
        "jr",
        "sr",
        "inc",
        "corp",
        "co",
        "ltd",
        "bros",
        "vs",
        "etc",
        "no",
        "nos",
        "fig",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "cu",
        "approx",
        "est",
        "dept",
        "univ",
        "ave",
        "rd",
        "mt",
        "ft",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
        "u.n",
        "e.u",
    ]
)
# A sentence ends at . ! ? or … (plus closing quotes/brackets) followed by space and a capital,
# a digit or an opening quote/bracket.
_BOUNDARY = re.compile(r"[.!?…]+[\"”’')\]]*(?=\s+[\"“‘'(\[A-Z0-9])")
_WORD_CHARS = frozenset(string.ascii_letters + ".")
_LONGEST_RUN = 16  # longer than any abbreviation or initialism below


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of `text[start:end]`, in `text` coordinates, whitespace trimmed.

    Lines are paragraphs in news text, so a newline always ends a sentence.
    """
    end = len(text) if end is None else end
    spans: list[Span] = []
    line_start = start
    while line_start < end:
        nl = text.find("\n", line_start, end)
        line_end = end if nl < 0 else nl
        spans.extend(_sentences_of_line(text, line_start, line_end))
        line_start = line_end + 1
    return spans


class _QuoteState:
    """Quotation marks counted from the current sentence start, kept up to date as boundaries advance.

    Keeps a multi-sentence quote together with its attribution ("... ready. However, ...," Putin said.):
    a boundary inside a quotation that opened since the sentence start, and closes later in the line, is
    not one. Counting incrementally keeps splitting linear in the line's length.
    """

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        self.last_close = text.rfind("”", start, end)
        self.last_straight = text.rfind('"', start, end)
        self.restart(start)

    def restart(self, cursor: int) -> None:
        self.counted_to = cursor
        self.opened = self.closed = self.straight = 0

    def inside(self, pos: int) -> bool:
        text, counted_to = self.text, self.counted_to
        self.opened += text.count("“", counted_to, pos)
        self.closed += text.count("”", counted_to, pos)
        self.straight += text.count('"', counted_to, pos)
        self.counted_to = pos
        if self.opened > self.closed and self.last_close >= pos:
            return True
        return self.straight % 2 == 1 and self.last_straight >= pos


def _sentences_of_line(text: str, start: int, end: int) -> list[Span]:
    spans: list[Span] = []
    cursor = start
    quotes = _QuoteState(text, start, end)
    for m in _BOUNDARY.finditer(text, start, end):
        if _is_abbreviation(text, cursor, m.start(), m.group()) or quotes.inside(m.end()):
            continue
        spans.append(Span(cursor, m.end()))
        cursor = m.end()
        quotes.restart(cursor)
    spans.append(Span(cursor, end))
    return [s for s in (_trim(text, s) for s in spans) if s.end > s.start]


def _is_abbreviation(text: str, cursor: int, dot: int, mark: str) -> bool:
    if not mark.startswith("."):
        return False
    # The run of letters and dots before the mark, read backwards: searching forwards from the sentence start
    # made a line of many abbreviations quadratic. A run longer than any abbreviation is a word.
    run = dot
    while run > cursor and text[run - 1] in _WORD_CHARS:
        run -= 1
        if dot - run > _LONGEST_RUN:
            return False
    token = text[run:dot].lstrip(".").lower()
    if not token:
        return False
    if token in _ABBREVIATIONS or len(token) == 1:
        return True
    return "." in token and len(token) <= 6  # initialisms such as U.S or D.C


def _trim(text: str, span: Span) -> Span:
    s, e = span.start, span.end
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return Span(s, e)


def chunk_id(article_id: str, article_hash: str, start: int, end: int) -> str:
    """Content-derived: the same article version always yields the same ids, a new version new ones."""
    digest = hashlib.sha256(f"{article_id}\x00{article_hash}\x00{start}\x00{end}".encode()).hexdigest()
    return digest[:24]


class Chunker:
    """Packs consecutive sentences into chunks of at most `max_tokens` model tokens.

    `count_tokens` is the embedder's own tokenizer, so the budget is exact; the prefix that
    the embedder prepends (the title) is charged to every chunk of the article.
    """

    def __init__(
        self,
        count_tokens: TokenCounter,
        max_tokens: int = 200,
        overlap_sentences: int = 1,
        prefix: Callable[[Article], str] | None = None,
    ) -> None:
        self._count = count_tokens
        self._max_tokens = max_tokens
        self._overlap = overlap_sentences
        self._prefix = prefix

    def split(self, article: Article) -> list[Chunk]:
        """The chunks of one article, in reading order."""
        prefix_tokens = self._count([self._prefix(article)])[0] if self._prefix else 0
        budget = max(16, self._max_tokens - prefix_tokens - 2)  # [CLS] and [SEP]
        article_hash = article.content_hash
        chunks: list[Chunk] = []
        for body in article.body:
            sentences = split_sentences(article.text, body.start, body.end)
            sentences = self._split_long(article.text, sentences, budget)
            sizes = self._count([article.text[s.start : s.end] for s in sentences])
            for group in self._pack(sizes, budget):
                spans = tuple(sentences[i] for i in group)
                start, end = spans[0].start, spans[-1].end
                chunks.append(
                    Chunk(
                        id=chunk_id(article.id, article_hash, start, end),
                        article_id=article.id,
                        article_hash=article_hash,
                        index=len(chunks),
                        text=article.text[start:end],
                        start=start,
                        end=end,
                        sentences=spans,
                        title=article.title,
                        source=article.source,
                        published_at=article.published_at,
                        url=article.url,
                    )
                )
        return chunks

    def _pack(self, sizes: list[int], budget: int) -> list[list[int]]:
        """Greedy packing; each chunk after the first repeats the last sentences of the one before."""
        groups: list[list[int]] = []
        i = 0
        while i < len(sizes):
            group = [i]
            total = sizes[i]
            j = i + 1
            while j < len(sizes) and total + sizes[j] + 1 <= budget:
                total += sizes[j] + 1
                group.append(j)
                j += 1
            groups.append(group)
            if j >= len(sizes):
                break
            overlap = min(self._overlap, len(group) - 1)
            back = j - overlap
            # Only overlap when the carried sentences leave room for new ones.
            i = back if overlap and sum(sizes[back:j]) + sizes[j] + overlap <= budget else j
        return groups

    def _split_long(self, text: str, sentences: list[Span], budget: int) -> list[Span]:
        """Cut sentences longer than the budget at word boundaries (run-on lists, tables)."""
        sizes = self._count([text[s.start : s.end] for s in sentences])
        out: list[Span] = []
        for span, size in zip(sentences, sizes, strict=True):
            if size <= budget:
                out.append(span)
                continue
            pieces = -(-size // budget) + 1
            step = max(1, (span.end - span.start) // pieces)
            cursor = span.start
            while cursor < span.end:
                cut = min(span.end, cursor + step)
                if cut < span.end:
                    space = text.rfind(" ", cursor + 1, cut)
                    cut = space if space > cursor else cut
                piece = _trim(text, Span(cursor, cut))
                if piece.end > piece.start:
                    out.append(piece)
                cursor = cut
        return out
