"""Syndication: the same wire story arriving from several outlets is kept once for retrieval.

A new article whose body is a near-duplicate of a stored one from another outlet is stored as a copy of it:
its record (text, source, URL, date) is kept, so GET /documents shows it and a citation of the kept article names
where else the story ran, but it has no chunks, so the answer's passages are not the same story five times.
Deleting the kept article promotes a copy in its place.

Near-duplicate: the estimated Jaccard similarity of the two bodies' word 5-shingles (MinHash, datasketch, with
LSH to find candidates) reaches the policy's threshold. Two articles from the same outlet are never folded:
an outlet's near-identical pages are either versions of one story (a new version replaces by id) or pages whose
extracted body is the same boilerplate (a cookie notice, a newsletter form) under different headlines, and
folding those would hide real articles.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import date

import numpy as np

from rag.models import Article, ArticleRecord, Copy

_WORD = re.compile(r"\w+")
_SCHEME = "affine32"  # datasketch 2's 32-bit hashing: signatures stored as uint32 read back the same


@dataclass(frozen=True, slots=True)
class SyndicationPolicy:
    """`threshold`: estimated Jaccard of word shingles at which two bodies are one story (0.8: at most about a
    tenth of each text differs: a headline, a dateline, an outlet's own last paragraph). `min_words`: shorter
    bodies are never folded (too few shingles to tell a copy from a shared boilerplate line)."""

    threshold: float = 0.8
    shingle_words: int = 5
    num_perm: int = 128
    min_words: int = 80
    enabled: bool = True
    other_outlets_only: bool = True


def body_text(article: Article) -> str:
    return "\n".join(article.text[s.start : s.end] for s in article.body)


def signature(text: str, policy: SyndicationPolicy) -> str | None:
    """The MinHash of a body's word shingles, base64 (None: too short to compare)."""
    from datasketch import MinHash

    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < policy.min_words:
        return None
    n = policy.shingle_words
    minhash = MinHash(num_perm=policy.num_perm, scheme=_SCHEME)
    minhash.update_batch([" ".join(words[i : i + n]).encode("utf-8") for i in range(len(words) - n + 1)])
    return base64.b64encode(minhash.hashvalues.astype(np.uint32).tobytes()).decode("ascii")


def _minhash(encoded: str, policy: SyndicationPolicy) -> object:
    from datasketch import MinHash

    values = np.frombuffer(base64.b64decode(encoded), dtype=np.uint32)
    return MinHash(num_perm=policy.num_perm, hashvalues=values, scheme=_SCHEME)


def _outlet(source: str) -> str:
    return source.strip().lower().removeprefix("www.")


class CopyFinder:
    """The stored articles that may be copied (kept ones with a signature), searchable by LSH."""

    def __init__(self, policy: SyndicationPolicy) -> None:
        from datasketch import MinHashLSH

        self.policy = policy
        self._lsh = MinHashLSH(threshold=policy.threshold, num_perm=policy.num_perm)
        self._minhashes: dict[str, object] = {}
        self._outlets: dict[str, str] = {}

    @classmethod
    def of(cls, records: dict[str, ArticleRecord], policy: SyndicationPolicy) -> CopyFinder:
        finder = cls(policy)
        for record in records.values():
            if record.signature and record.copy_of is None:
                finder.add(record.id, record.signature, record.source)
        return finder

    def add(self, article_id: str, encoded: str, source: str) -> None:
        if article_id in self._minhashes:
            self.remove(article_id)
        minhash = _minhash(encoded, self.policy)
        self._lsh.insert(article_id, minhash)
        self._minhashes[article_id] = minhash
        self._outlets[article_id] = _outlet(source)

    def remove(self, article_id: str) -> None:
        if self._minhashes.pop(article_id, None) is not None:
            self._lsh.remove(article_id)
            self._outlets.pop(article_id, None)

    def original_of(self, article_id: str, encoded: str | None, source: str) -> str | None:
        """The stored article that `article_id` (with this signature and outlet) is a copy of, if any: the most
        similar one from another outlet at or above the threshold."""
        if not self.policy.enabled or encoded is None:
            return None
        minhash = _minhash(encoded, self.policy)
        outlet = _outlet(source)
        best: tuple[float, str] | None = None
        for candidate in self._lsh.query(minhash):
            if candidate == article_id or (self.policy.other_outlets_only and self._outlets.get(candidate) == outlet):
                continue
            similarity = float(minhash.jaccard(self._minhashes[candidate]))  # type: ignore[attr-defined]
            if similarity >= self.policy.threshold and (best is None or similarity > best[0]):
                best = (similarity, candidate)
        return best[1] if best else None


def copies_by_original(records: dict[str, ArticleRecord]) -> dict[str, tuple[Copy, ...]]:
    """For each kept article, its copies (oldest first), from the records."""
    found: dict[str, list[Copy]] = {}
    for record in records.values():
        if record.copy_of:
            found.setdefault(record.copy_of, []).append(Copy(record.id, record.source, record.url, record.published_at))
    return {
        kept: tuple(sorted(copies, key=lambda c: (c.published_at or date.max, c.article_id)))
        for kept, copies in found.items()
    }
