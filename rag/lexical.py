"""Lexical retrieval: BM25 over chunk titles and texts (bm25s), held in memory by each replica."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import bm25s
import numpy as np

from rag.text import terms

# Terms are stored with each chunk so that a replica starts without tokenising the corpus again. Bump
# this whenever `passage_terms` (or `rag.text.terms` beneath it) would tokenise a text differently:
# chunks stored under another version are tokenised afresh when loaded.
TERMS_VERSION = 1


def passage_terms(title: str, text: str) -> tuple[str, ...]:
    """What BM25 indexes of a chunk: the terms of its title and text (interned: chunks share most)."""
    return tuple(sys.intern(t) for t in terms(f"{title}\n{text}"))


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

    def document_frequency(self, term: str) -> int:
        return self._df.get(term, 0)

    def scores(self, query: Sequence[str]) -> np.ndarray | None:
        """BM25 score of every document for the query's terms (None when none of them is in the corpus)."""
        query_terms = [t for t in query if t in self._df]
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
