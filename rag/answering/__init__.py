"""Answering: from the ranked sentences to the cited answer, by quoting (`extractive`) or by an LLM whose
citations are verified (`generative`)."""

from rag.answering.extractive import NO_ANSWER, ExtractiveAnswerer, continuation, refusal, stream_text
from rag.answering.generative import GenerativeAnswerer

__all__ = ["NO_ANSWER", "ExtractiveAnswerer", "GenerativeAnswerer", "continuation", "refusal", "stream_text"]
