"""Verification: check a generated answer's [n] markers against the passages the model was given.

An LLM's citations are claims too. Each answer sentence is split off, its markers parsed, and each
cited passage must support it: the sentence's content words must largely occur in the passage and
its meaning (MiniLM cosine against the passage's stored sentence vectors) must be close to one of
its sentences. Markers naming no given passage are removed and reported; sentences without a marker
or without support are flagged. Markers are renumbered to citations that quote the passage sentence
that best supports the answer sentence, with its offsets, like extractive citations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rag.chunking import split_sentences as chunk_sentences
from rag.citations import Quote, build_citations, quote_text
from rag.embedding import Embedder
from rag.models import Chunk, Citation, Flag, Span
from rag.text import terms

# "[1]", "[1, 2]", "[1][2]", "[Passage 3]": the model's references to the numbered passages.
_MARKER = re.compile(r"\s*\[\s*(?:passages?\s*)?(\d+(?:\s*[,;]\s*(?:passages?\s*)?\d+)*)\s*\]", re.IGNORECASE)
_MARKER_SPAN = r"\[\s*(?:passages?\s*)?\d+(?:\s*[,;]\s*(?:passages?\s*)?\d+)*\s*\]"
# Markers that open what the splitter took for a sentence belong to the one before ("... capital. [1] He said").
_LEADING_MARKERS = re.compile(rf"(?:\s*{_MARKER_SPAN})+")
# Sentences of a document that address a model rather than a reader never count as evidence.
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:instructions?|prompts?|rules|directions)\b"
    r"|\byou are now\b|\bsystem prompt\b|\bas an ai\b|\blanguage model\b",
    re.IGNORECASE,
)
# "The sources do not answer ...", "The passages don't mention ...": a refusal, not a claim.
_REFUSAL = re.compile(
    r"\b(?:sources?|passages?|context|articles?|provided|information)\b.{0,40}"
    r"\b(?:not|no|don't|doesn't|cannot|can't)\b"
    r"|\b(?:not|no|don't|doesn't|cannot|can't)\b.{0,40}\b(?:sources?|passages?|context|articles?|information)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class VerificationPolicy:
    """Thresholds, tuned on the eval set's reference answers (bench/verification.py) and wrong claims (tests).

    A sentence is supported when `similarity + overlap_weight * overlap >= min_support` and
    `similarity >= min_similarity`: a close paraphrase needs few shared words, a sentence made of
    the passage's words may be phrased further from any one of its sentences.
    """

    min_similarity: float = 0.3  # cosine of the answer sentence to the closest cited sentence
    overlap_weight: float = 0.5  # weight of the share of its content words found in the cited passages
    min_support: float = 0.75


@dataclass(slots=True)
class Verification:
    """A generated answer after checking: renumbered text, its citations, and what was wrong with it."""

    text: str
    citations: list[Citation]
    flags: list[Flag] = field(default_factory=list)
    sentences: int = 0
    supported: int = 0  # sentences with at least one valid marker whose passage supports them
    refused: bool = False  # the model said the passages do not answer


@dataclass(frozen=True, slots=True)
class Evidence:
    """One passage the model was given, with a vector per sentence (from the index or embedded now)."""

    chunk: Chunk
    sentence_vectors: np.ndarray


def split_sentences(text: str) -> list[str]:
    """The answer's sentences, split as articles are (`rag.chunking.split_sentences`), each keeping the
    markers that follow its final punctuation."""
    spans: list[Span] = []
    for span in chunk_sentences(text):
        lead = _LEADING_MARKERS.match(text, span.start, span.end)
        if lead and spans:
            spans[-1] = Span(spans[-1].start, lead.end())
            span = Span(lead.end(), span.end)
        piece = text[span.start : span.end].strip()
        if piece:
            spans.append(span)
    return [text[s.start : s.end].strip() for s in spans]


def markers(sentence: str) -> list[int]:
    """Every passage number the sentence's markers name, in order, repeats removed."""
    found = [int(n) for m in _MARKER.finditer(sentence) for n in re.findall(r"\d+", m.group(1))]
    return list(dict.fromkeys(found))


def strip_markers(sentence: str) -> str:
    return " ".join(_MARKER.sub("", sentence).split())


def is_instruction(text: str) -> bool:
    """A sentence that talks to a model ("ignore previous instructions ..."): data, never evidence."""
    return bool(_INSTRUCTION.search(text))


class Verifier:
    """Checks generated sentences against their cited passages; one embedding call per answer."""

    def __init__(self, embedder: Embedder, policy: VerificationPolicy | None = None) -> None:
        self.embedder = embedder
        self.policy = policy or VerificationPolicy()

    def evidence(self, chunks: Sequence[Chunk], stored: dict[str, np.ndarray]) -> list[Evidence]:
        """Passages with sentence vectors: taken from `stored` (the index) when present, else embedded."""
        missing = [c for c in chunks if c.id not in stored]
        if missing:
            texts = [c.text[s.start - c.start : s.end - c.start] for c in missing for s in c.sentences]
            vectors = self.embedder.embed_texts(texts)
            pos = 0
            stored = dict(stored)
            for c in missing:
                stored[c.id] = vectors[pos : pos + len(c.sentences)]
                pos += len(c.sentences)
        return [Evidence(c, stored[c.id]) for c in chunks]

    def verify(self, text: str, passages: Sequence[Evidence]) -> Verification:
        """Parse, check and renumber `text`, whose markers refer to `passages` numbered from 1."""
        sentences = split_sentences(text)
        claims = [strip_markers(s) for s in sentences]
        if not sentences:
            return Verification(text="", citations=[])
        if all(not markers(s) for s in sentences) and any(_REFUSAL.search(c) for c in claims):
            return Verification(text=" ".join(claims), citations=[], sentences=len(sentences), refused=True)
        vectors = self.embedder.embed_texts(claims)
        flags: list[Flag] = []
        quotes: list[Quote] = []
        per_sentence: list[dict[int, Quote]] = []
        supported = 0
        for i, (sentence, claim) in enumerate(zip(sentences, claims, strict=True), start=1):
            named = markers(sentence)
            valid = [n for n in named if 1 <= n <= len(passages)]
            invalid = tuple(n for n in named if n not in valid)
            if invalid:
                flags.append(Flag("out_of_range_marker", i, claim, invalid, f"only [1]-[{len(passages)}] were given"))
            if not valid:
                detail = "its only markers named no given passage" if invalid else "no [n] marker"
                flags.append(Flag("no_citation", i, claim, (), detail))
            claim_terms = set(terms(claim))
            chosen = {n: self._closest(claim_terms, vectors[i - 1], passages[n - 1]) for n in valid}
            if valid:
                reason = self._unsupported(claim, vectors[i - 1], [passages[n - 1] for n in valid])
                if reason:
                    # Still cite what the model named, quoting its closest sentence, so a reader can judge.
                    flags.append(Flag("unsupported", i, claim, tuple(valid), reason))
                else:
                    supported += 1
            quotes.extend(chosen.values())
            per_sentence.append(chosen)
        citations = build_citations(quotes)
        number = {(c.article_id, c.quote_start, c.quote_end): c.n for c in citations}
        rendered = []
        for sentence, chosen in zip(sentences, per_sentence, strict=True):
            mapping = {n: number[(q.chunk.article_id, q.sentence.start, q.sentence.end)] for n, q in chosen.items()}
            rendered.append(_renumber(sentence, mapping))
        return Verification(" ".join(rendered), citations, flags, len(sentences), supported)

    def _unsupported(self, claim: str, vector: np.ndarray, cited: Sequence[Evidence]) -> str:
        """Why the cited passages, taken together, do not support `claim` ("" when they do)."""
        policy = self.policy
        claim_terms = set(terms(claim))
        cited_terms: set[str] = set()
        similarity = -1.0
        for passage in cited:
            spans = _evidence_spans(passage.chunk)
            cited_terms.update(terms(passage.chunk.title))
            for _, text in spans:
                cited_terms.update(terms(text))
            if spans:
                rows = [row for row, _ in spans]
                similarity = max(similarity, float(np.max(passage.sentence_vectors[rows] @ vector)))
        if similarity < -0.5:
            return "the cited passages hold only instructions, no evidence"
        overlap = len(claim_terms & cited_terms) / len(claim_terms) if claim_terms else 0.0
        support = similarity + policy.overlap_weight * overlap
        if similarity >= policy.min_similarity and support >= policy.min_support:
            return ""
        return f"similarity {similarity:.2f}, word overlap {overlap:.2f}"

    def _closest(self, claim_terms: set[str], vector: np.ndarray, passage: Evidence) -> Quote:
        """The passage sentence that best supports the claim (meaning, then shared words); instructions excluded."""
        chunk = passage.chunk
        spans = _evidence_spans(chunk)
        if not spans:
            return Quote(chunk, Span(chunk.start, chunk.end))
        sims = passage.sentence_vectors[[row for row, _ in spans]] @ vector
        scores = [
            float(sim) + self.policy.overlap_weight * len(claim_terms & set(terms(text))) / max(len(claim_terms), 1)
            for sim, (_, text) in zip(sims, spans, strict=True)
        ]
        return Quote(chunk, chunk.sentences[spans[int(np.argmax(scores))][0]])


def _evidence_spans(chunk: Chunk) -> list[tuple[int, str]]:
    """(row, text) of the passage's sentences that may support a claim: instructions excluded."""
    out = []
    for row, span in enumerate(chunk.sentences):
        text = quote_text(chunk, span)
        if not is_instruction(text):
            out.append((row, text))
    return out


def _renumber(sentence: str, mapping: dict[int, int]) -> str:
    """Rewrite the sentence's markers to citation numbers; markers with no citation disappear."""

    def replace(match: re.Match[str]) -> str:
        numbers = [mapping[int(n)] for n in re.findall(r"\d+", match.group(1)) if int(n) in mapping]
        numbers = list(dict.fromkeys(numbers))
        return " " + "".join(f"[{n}]" for n in numbers) if numbers else ""

    out = _MARKER.sub(replace, sentence)
    # "claim [1]." reads better as "claim. [1]" only by taste; keep the model's placement, tidy spaces.
    return " ".join(out.split()).replace(" .", ".")
