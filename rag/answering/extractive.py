"""The extractive answerer: quote the sentences that answer the question, or say the sources don't.

It quotes sentences verbatim, so every claim is exactly what a source says. Which sentences, and whether
to answer at all, comes from the reranking stage (`rag.reranking`): the best-ranked sentence is quoted
when its calibrated probability of answering the question clears `refuse_below`, with the sentences of
its passage that score close behind it. Nothing here reads the question for patterns: the cross-encoder
read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from rag.citations import Quote, build_citations, compose, quote_text
from rag.generation import NO_ANSWER_REPLY
from rag.models import Answer, AnswerEvent, Chunk, ScoredChunk, Span
from rag.policies import AnswerPolicy, Scale
from rag.question import Question
from rag.reranking import Candidate, Ranking

NO_ANSWER = NO_ANSWER_REPLY

# A sentence that leans on the one before it ("But he added that ...") is quoted with it.
_CONTINUATION = re.compile(
    r"^(?:[\"“‘']?)(?:(?:But|And|However,?|Yet|Still,?)\s+)?(?:he|she|they|it|this|that|these|those)\s+"
    r"(?:\w+\s+){0,2}?(?:added|said|says|noted|stressed|warned|stated|told|insisted|argued|continued|explained)\b",
    re.IGNORECASE,
)


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

    def answer(self, question: Question, ranking: Ranking, hits: list[ScoredChunk]) -> Answer:
        if not ranking.candidates:
            return refusal(question.text, hits)
        scale = self.policy.scale(ranking.cross_encoded)
        best = ranking.candidates[0]
        confidence = round(scale.probability(best.score), 4)
        if confidence < scale.refuse_below:
            return refusal(question.text, hits, confidence)
        chosen = self.choose(ranking.candidates, scale)
        quotes: list[Quote] = []
        for cand in sorted(chosen, key=lambda c: c.sentence.start):
            quotes.append(Quote(cand.hit.chunk, cand.sentence))
            follower = continuation(cand.hit.chunk, cand.sentence)
            if follower is not None:
                quotes.append(Quote(cand.hit.chunk, follower))
        citations = build_citations(quotes)
        return Answer(
            question=question.text,
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
