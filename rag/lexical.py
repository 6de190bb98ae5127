"""Lexical retrieval: BM25 over chunk titles and texts (bm25s), held in memory by each replica."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cache

import bm25s
import numpy as np

from rag.text import QUESTION_WORDS, stem, terms, words

# Terms are stored with each chunk so that a replica starts without tokenising the corpus again. Bump
# this whenever `passage_terms` (or `rag.text.terms` beneath it) would tokenise a text differently:
# chunks stored under another version are tokenised afresh when loaded.
TERMS_VERSION = 1


def passage_terms(title: str, text: str) -> tuple[str, ...]:
    """What BM25 indexes of a chunk: the terms of its title and text (interned: chunks share most)."""
    return tuple(sys.intern(t) for t in terms(f"{title}\n{text}"))


@cache
def _question_stems() -> frozenset[str]:
    return frozenset(stem(w) for w in QUESTION_WORDS)


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


class LexicalIndex:
    """BM25 over pre-tokenised documents; also the source of term document frequencies (IDF)."""

    def __init__(self, tokenised: Sequence[Sequence[str]]) -> None:
        """`tokenised`: each document's terms, as `rag.text.terms` makes them."""
        self._size = len(tokenised)
        self._bm25 = bm25s.BM25()
        if self._size:
            self._bm25.index([list(t) or ["\x00"] for t in tokenised], show_progress=False)
        df: dict[str, int] = {}
        for doc in tokenised:
            for term in set(doc):
                df[term] = df.get(term, 0) + 1
        self._df = df

    def __len__(self) -> int:
        return self._size

    def idf(self, term: str) -> float:
        """BM25-style IDF; a term the corpus never uses gets the highest value."""
        n = self._df.get(term, 0)
        return float(np.log(1 + (self._size - n + 0.5) / (n + 0.5)))

    def question_weights(self, question: str) -> tuple[dict[str, float], float]:
        """The IDF of each distinct informative term of `question` (question words such as "what" left
        out) and their sum (1.0 when there are none): how much of a question a text covers is the
        weight of the terms it holds over that sum.

        A hyphenated word counts once, whole: `terms` also indexes its parts (so that BM25 finds "year-end" from
        "end of the year"), but weighing "year-end", "year" and "end" each would let one word of the question
        outweigh the rest of it. A part the question also uses on its own still counts, and so do the parts of
        a compound the corpus never writes ("Xi-Putin"): they are then all of that word that can match."""
        split = {part for whole, parts in compound_parts(question).items() if self._df.get(whole) for part in parts}
        informative = [t for t in dict.fromkeys(terms(question)) if t not in _question_stems() and t not in split]
        weights = {t: self.idf(t) for t in informative}
        return weights, sum(weights.values()) or 1.0

    def document_frequency(self, term: str) -> int:
        return self._df.get(term, 0)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Top `k` (document index, score) with a positive score, restricted to `mask` if given."""
        return self.top(self.scores(query), k, mask)

    def scores(self, query: str) -> np.ndarray | None:
        """BM25 score of every document for `query` (None when no query term is in the corpus)."""
        query_terms = [t for t in terms(query) if t in self._df]
        if not query_terms or not self._size:
            return None
        return np.asarray(self._bm25.get_scores(query_terms), dtype=np.float32)

    def top(self, scores: np.ndarray | None, k: int, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The `k` best of `scores` that are positive (and inside `mask`), best first."""
        if scores is None:
            return []
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        k = min(k, self._size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
