"""Answering: quote the sentences that answer the question, or say the sources don't.

The default answerer is extractive: it quotes sentences verbatim, so every claim is exactly what a source
says. Which sentences, and whether to answer at all, comes from the reranking stage (`rag.reranking`): the
best-ranked sentence is quoted when its calibrated probability of answering the question clears
`refuse_below`, with the sentences of its passage that score close behind it. Nothing here reads the
question for patterns: the cross-encoder read it.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from rag.citations import Quote, build_citations, compose, quote_text
from rag.errors import ProviderError
from rag.generation import NO_ANSWER_REPLY, OpenAIGenerator, build_messages
from rag.models import Answer, Chunk, ScoredChunk, Span
from rag.reranking import Candidate, Ranking
from rag.retrieval import Snapshot
from rag.verification import Verifier

log = logging.getLogger("rag.answering")

NO_ANSWER = NO_ANSWER_REPLY

# What an answer stream yields: pieces of text as they are produced, then the finished Answer.
AnswerEvent = str | Answer

# A sentence that leans on the one before it ("But he added that ...") is quoted with it.
_CONTINUATION = re.compile(
    r"^(?:[\"“‘']?)(?:(?:But|And|However,?|Yet|Still,?)\s+)?(?:he|she|they|it|this|that|these|those)\s+"
    r"(?:\w+\s+){0,2}?(?:added|said|says|noted|stressed|warned|stated|told|insisted|argued|continued|explained)\b",
    re.IGNORECASE,
)


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

    def scale(self, ranking: Ranking) -> Scale:
        return self.cross_encoder if ranking.cross_encoded else self.cheap


def refusal(question: str, hits: list[ScoredChunk], confidence: float | None = None) -> Answer:
    """The answer when the sources do not support one: said plainly, nothing cited."""
    return Answer(
        question=question, text=NO_ANSWER, answerable=False, citations=[], retrieved=hits, confidence=confidence
    )


def _leans_on(chunk: Chunk, span: Span, nxt: Span, nxt_text: str) -> bool:
    """Whether the next sentence `nxt` (its text `nxt_text`) only makes sense after `span`: in the same
    paragraph, and opening like "But he added that ..."."""
    between = chunk.text[span.end - chunk.start : nxt.start - chunk.start]
    return "\n" not in between and bool(_CONTINUATION.match(nxt_text))


def continuation(chunk: Chunk, sentence: Span) -> Span | None:
    """The next sentence of the same paragraph when it only makes sense after this one."""
    spans = chunk.sentences
    for i, span in enumerate(spans[:-1]):
        if span == sentence:
            nxt = spans[i + 1]
            return nxt if _leans_on(chunk, span, nxt, quote_text(chunk, nxt)) else None
    return None


class ExtractiveAnswerer:
    """Quotes the best-ranked sentence and those of its passage close behind it, each with a citation."""

    def __init__(self, policy: AnswerPolicy | None = None) -> None:
        self.policy = policy or AnswerPolicy()

    def answer(self, question: str, ranking: Ranking, hits: list[ScoredChunk]) -> Answer:
        if not ranking.candidates:
            return refusal(question, hits)
        scale = self.policy.scale(ranking)
        best = ranking.candidates[0]
        confidence = round(scale.probability(best.score), 4)
        if confidence < scale.refuse_below:
            return refusal(question, hits, confidence)
        chosen = self.choose(ranking.candidates, scale)
        quotes: list[Quote] = []
        for cand in sorted(chosen, key=lambda c: c.sentence.start):
            quotes.append(Quote(cand.hit.chunk, cand.sentence))
            follower = continuation(cand.hit.chunk, cand.sentence)
            if follower is not None:
                quotes.append(Quote(cand.hit.chunk, follower))
        citations = build_citations(quotes)
        return Answer(
            question=question,
            text=compose(citations),
            answerable=True,
            citations=citations,
            retrieved=hits,
            confidence=confidence,
        )

    def choose(self, candidates: Sequence[Candidate], scale: Scale) -> list[Candidate]:
        """The best candidate and the few of its passage close behind it that add something: the passage
        that answers usually says more of the answer, while a close second from another article is as
        often about another event."""
        best = candidates[0]
        chosen = [best]
        for cand in candidates[1:]:
            if len(chosen) >= self.policy.max_sentences or cand.score < best.score - scale.keep_within:
                break
            if cand.hit.chunk.id != best.hit.chunk.id:
                continue
            if any(float(cand.vector @ c.vector) >= self.policy.duplicate_similarity for c in chosen):
                continue
            chosen.append(cand)
        return chosen


def stream_text(answer: Answer) -> Iterator[AnswerEvent]:
    """An answer already complete, streamed like a generated one: word pieces, then the answer."""
    yield from re.findall(r"\S+\s*", answer.text)
    yield answer


class GenerativeAnswerer:
    """Answers with an LLM over the top passages, verifies its citations, and falls back to quoting.

    Anything the provider does wrong (unreachable, slow, rate-limited, an empty or marker-less reply,
    no sentence that its cited passage supports) yields the extractive answer with a warning instead.
    Pieces of the reply are yielded as they arrive; the final Answer is authoritative and, after a
    fallback, replaces what was streamed.
    """

    def __init__(
        self,
        generator: OpenAIGenerator,
        verifier: Verifier,
        fallback: ExtractiveAnswerer,
        passages: int = 5,
        max_sentences: int = 3,
        system_role: bool = True,
    ) -> None:
        self.generator = generator
        self.verifier = verifier
        self.fallback = fallback
        self.passages = passages
        self.max_sentences = max_sentences
        self.system_role = system_role

    def stream(
        self, question: str, ranking: Ranking, hits: list[ScoredChunk], snapshot: Snapshot, k: int
    ) -> Iterator[AnswerEvent]:
        """The passages of the best-ranked sentences go into the prompt first, then the rest in retrieval order."""
        chunks = [h.chunk for h in ranking.passages(hits)[: min(k, self.passages)]]
        if not chunks:
            yield from stream_text(self.fallback.answer(question, ranking, hits))
            return
        messages = build_messages(question, chunks, self.max_sentences, self.system_role)
        started = time.perf_counter()
        pieces: list[str] = []
        try:
            for piece in self.generator.stream(messages):
                pieces.append(piece)
                yield piece
        except ProviderError as exc:
            yield from self._fall_back(question, ranking, hits, str(exc), streamed=bool(pieces))
            return
        reply = "".join(pieces)
        generated = time.perf_counter()
        stored = {c.id: snapshot.sentence_vectors(snapshot.by_id[c.id]) for c in chunks if c.id in snapshot.by_id}
        checked = self.verifier.verify(reply, self.verifier.evidence(chunks, stored))
        timings = {
            "generate": round((generated - started) * 1000, 3),
            "verify": round((time.perf_counter() - generated) * 1000, 3),
        }
        if checked.refused:
            yield Answer(question, NO_ANSWER, False, [], hits, timings_ms=timings, mode="llm")
            return
        if not checked.citations or checked.supported == 0:
            if not checked.citations:
                reason = "the LLM's reply carried no valid [n] citation"
            else:
                reason = "no sentence of the LLM's reply is supported by the passage it cites"
            log.info("rejected LLM reply: %r", reply[:2000])
            yield from self._fall_back(question, ranking, hits, reason, streamed=True)
            return
        yield Answer(
            question, checked.text, True, checked.citations, hits, timings_ms=timings, mode="llm", flags=checked.flags
        )

    def _fall_back(
        self, question: str, ranking: Ranking, hits: list[ScoredChunk], reason: str, streamed: bool
    ) -> Iterator[AnswerEvent]:
        log.warning("LLM answer unusable, answering extractively: %s", reason)
        answer = self.fallback.answer(question, ranking, hits)
        answer.warnings.append(f"LLM answer unavailable ({reason}); this answer quotes the sources instead")
        # Pieces of a rejected reply may already be out; the final answer then replaces them.
        yield from stream_text(answer) if not streamed else iter([answer])
