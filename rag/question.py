"""The question, parsed once per request: what retrieval and answering read instead of its text.

Its terms (what BM25 searches for), the IDF weight of each informative term in the index it is asked of
(how much of the question a text covers is the weight of the terms it holds), and the terms of the occasion
it names ("during the December 2022 video call"). The retriever parses it against the snapshot it searches,
and every later stage receives the same `Question`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from rag.text import FRAME_WORDS, setting_terms, stem, terms, words


class TermStatistics(Protocol):
    """What parsing needs of an index: how rare each term is."""

    def idf(self, term: str) -> float: ...

    def document_frequency(self, term: str) -> int: ...


@cache
def _frame_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in FRAME_WORDS)


def compound_parts(text: str) -> dict[str, set[str]]:
    """Each hyphenated word of `text` (as its term, "year-end") with the terms that come only from splitting it
    (year, end); a part the text also uses as a word of its own is not one."""
    found = words(text)
    if not any("-" in w for w in found):
        return {}
    alone = set(terms(" ".join(w for w in found if "-" not in w)))
    out: dict[str, set[str]] = {}
    for word in found:
        whole = [t for t in terms(word) if "-" in t] if "-" in word else []
        if whole:
            out.setdefault(whole[0], set()).update(set(terms(" ".join(word.split("-")))) - alone)
    return out


@dataclass(frozen=True, slots=True)
class Question:
    """A question and what every stage reads of it."""

    text: str
    terms: tuple[str, ...]  # `rag.text.terms` of the text, in order, repeats kept (BM25's query)
    weights: Mapping[str, float]  # IDF of each distinct informative term
    total: float  # sum of `weights` (1.0 when there are none)
    setting: frozenset[str]  # terms of the occasion the question names (`rag.text.setting_phrases`)

    @classmethod
    def parse(cls, text: str, index: TermStatistics) -> Question:
        """`text` parsed against `index`'s term statistics.

        A hyphenated word counts once, whole: `terms` also indexes its parts (so that BM25 finds "year-end" from
        "end of the year"), but weighing "year-end", "year" and "end" each would let one word of the question
        outweigh the rest of it. A part the question also uses on its own still counts, and so do the parts of a
        compound the corpus never writes ("Xi-Putin"): they are then all of that word that can match. Words that
        frame a question ("say", "describe", "how many") carry no evidence and weigh nothing."""
        split = {
            part for whole, parts in compound_parts(text).items() if index.document_frequency(whole) for part in parts
        }
        found = terms(text)
        informative = [t for t in dict.fromkeys(found) if t not in _frame_stems() and t not in split]
        weights = {t: index.idf(t) for t in informative}
        return cls(text, tuple(found), weights, sum(weights.values()) or 1.0, setting_terms(text))

    def share(self, found: Collection[str]) -> float:
        """The weight of the question's informative terms that `found` holds, over their total."""
        return sum(w for t, w in self.weights.items() if t in found) / self.total
