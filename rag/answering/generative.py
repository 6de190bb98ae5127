"""The LLM answerer: an LLM writes the answer from the ranked passages, verification checks its citations,
and anything unusable falls back to the extractive answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from rag.answering.extractive import NO_ANSWER, ExtractiveAnswerer, stream_text
from rag.errors import ProviderError
from rag.generation import OpenAIGenerator, build_messages
from rag.models import Answer, AnswerEvent, ScoredChunk
from rag.question import Question
from rag.reranking import Ranking, SentenceSource
from rag.verification import Verifier

log = logging.getLogger("newsrag.answering")


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
        self, question: Question, ranking: Ranking, hits: list[ScoredChunk], index: SentenceSource, k: int
    ) -> Iterator[AnswerEvent]:
        """The passages of the best-ranked sentences go into the prompt first, then the rest in retrieval order."""
        chunks = [h.chunk for h in ranking.passages(hits)[: min(k, self.passages)]]
        if not chunks:
            yield from stream_text(self.fallback.answer(question, ranking, hits))
            return
        messages = build_messages(question.text, chunks, self.max_sentences, self.system_role)
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
        stored = {c.id: s.vectors for c in chunks if (s := index.sentences(c.id)) is not None}
        checked = self.verifier.verify(reply, self.verifier.evidence(chunks, stored))
        timings = {
            "generate": round((generated - started) * 1000, 3),
            "verify": round((time.perf_counter() - generated) * 1000, 3),
        }
        if checked.refused:
            yield Answer(question.text, NO_ANSWER, False, [], hits, timings_ms=timings, mode="llm")
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
            question.text,
            checked.text,
            True,
            checked.citations,
            hits,
            timings_ms=timings,
            mode="llm",
            flags=checked.flags,
        )

    def _fall_back(
        self, question: Question, ranking: Ranking, hits: list[ScoredChunk], reason: str, streamed: bool
    ) -> Iterator[AnswerEvent]:
        log.warning("LLM answer unusable, answering extractively: %s", reason)
        answer = self.fallback.answer(question, ranking, hits)
        answer.warnings.append(f"LLM answer unavailable ({reason}); this answer quotes the sources instead")
        # Pieces of a rejected reply may already be out; the final answer then replaces them.
        yield from stream_text(answer) if not streamed else iter([answer])
