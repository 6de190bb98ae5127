"""Every tuned number of the query path, in one place: what retrieval, reranking and answering are told.

The defaults are the tuned values (eval/README.md says how each was chosen); the settings that override
one default to it, and `rag.pipeline.policies(settings)` fills them in. Stages receive their policy through
their constructor and never read settings themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetrievalPolicy:
    """Hybrid retrieval: how many candidates each retriever gives, how they are fused and the top reordered."""

    candidates: int = 50  # hits taken from each retriever before fusion
    rrf_k: int = 60
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    # The top `rerank_depth` fused passages are reordered by rerank_fused_weight × fused score + their best
    # sentence (cosine + rerank_lexical_weight × its share of the question's terms); setting terms the sentence
    # lacks but its article holds count rerank_setting_weight of theirs (rag/retrieval.py, `_rerank`).
    rerank_depth: int = 10
    rerank_fused_weight: float = 40.0
    rerank_lexical_weight: float = 1.0
    rerank_setting_weight: float = 0.2
    prefer_weight: float = 0.3  # bonus of passages in the query's preferred date range
    exact_limit: int = 5_000  # a filtered dense search over at most this many chunks is exact (else Chroma's HNSW)
    cached_chunks: int = 4096  # retrieved chunks (text, sentence vectors, terms) a replica keeps
    cached_vectors: int = 32_768  # passage vectors of filtered exact searches a replica keeps (48 MB)
    cached_articles: int = 512  # articles whose term sets a snapshot keeps (a question reads about 8)


@dataclass(frozen=True, slots=True)
class ReloadPolicy:
    """How a replica follows the store: it reads the change log since its last reload (looking back
    `overlap_seconds` further, for writes that land late and writers' clocks that differ), and compares every
    record at least every `full_scan_seconds` (a writer too old to keep the log is still seen). It saves what its
    snapshot holds of each chunk beside its lexical index at most every `save_seconds`, and when it stops, so that
    a restart reads only the articles changed since."""

    overlap_seconds: float = 60.0
    full_scan_seconds: float = 600.0
    save_seconds: float = 600.0  # how often, at most, the snapshot's rows are saved for the next start


@dataclass(frozen=True, slots=True)
class RerankPolicy:
    """How many sentences compete, how the cheap stage scores them, and what the cross-encoder may spend.

    The cheap-stage weights are the ones the answerer has used since before the cross-encoder (chosen on the
    seed questions' tune half); the shortlist and budget were chosen on the tune halves of both question
    sets, against the latency they cost.
    """

    passages: int = 5  # top passages whose sentences compete
    shortlist: int = 8  # most sentences the cross-encoder reads
    budget_tokens: int = 256  # most cross-encoder tokens (question and sentence pairs) per question
    lexical_weight: float = 0.3  # cheap score: weight of the sentence's share of the question's terms
    passage_weight: float = 0.1  # cheap score: weight of the passage's share
    rank_weight: float = 0.05  # cheap score: bonus for sentences of higher-ranked passages
    reorder_passages: bool = False  # list retrieved passages with those of the best sentences first


@dataclass(frozen=True, slots=True)
class Scale:
    """How to read one kind of sentence score: its calibration and the margins that are measured in it.

    `probability(score)` = 1 / (1 + exp(-(slope * score + intercept))): the chance that a best-ranked sentence
    with this score answers the question, fitted by `python -m eval.calibrate` on the tune halves.
    """

    slope: float
    intercept: float
    refuse_below: float  # answer only when the best sentence's probability reaches this
    keep_within: float  # further sentences of the best one's passage score at most this much lower

    def probability(self, score: float) -> float:
        return 1.0 / (1.0 + math.exp(-(self.slope * score + self.intercept)))


@dataclass(frozen=True, slots=True)
class AnswerPolicy:
    """The answerer's knobs. Scores come from the cross-encoder, or, with `RAG_RERANKER=none`, from the
    cheap stage; each has its own scale. The calibrations and thresholds were fitted by `python -m
    eval.calibrate` on the tune halves of the seed and news-quiz questions (2026-12-07); `keep_within`
    was chosen on the same halves (eval/README.md)."""

    max_sentences: int = 3
    duplicate_similarity: float = 0.95  # a sentence this close to a chosen one adds nothing
    cross_encoder: Scale = field(default_factory=lambda: Scale(0.321, -1.243, 0.20, 4.0))
    cheap: Scale = field(default_factory=lambda: Scale(3.672, -3.160, 0.15, 0.115))

    def scale(self, cross_encoded: bool) -> Scale:
        return self.cross_encoder if cross_encoded else self.cheap
