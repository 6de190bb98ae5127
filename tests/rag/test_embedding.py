from __future__ import annotations

import numpy as np
import pytest

from rag.embedding import OnnxEmbedder


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder(batch_tokens=64)


def test_vectors_are_real_normalised_and_384_wide(embedder: OnnxEmbedder) -> None:
    vectors = embedder.embed_queries(["Putin met Xi in Moscow.", "Gas exports rose."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_a_paraphrase_is_closer_than_unrelated_text(embedder: OnnxEmbedder) -> None:
    a, b, c = embedder.embed_queries(
        [
            "Russia became one of China's biggest oil suppliers.",
            "China now buys much of its crude oil from Russia.",
            "The football team won the championship on penalties.",
        ]
    )
    assert a @ b > a @ c + 0.3


def test_batching_and_padding_do_not_change_vectors(embedder: OnnxEmbedder) -> None:
    texts = ["short", "a somewhat longer sentence about natural gas pipelines to China", "mid length text here"] * 3
    together = embedder.embed_queries(texts)
    alone = np.stack([embedder.embed_queries([t])[0] for t in texts])
    assert np.allclose(together, alone, atol=2e-3)


def test_long_text_is_truncated_at_256_not_128_tokens(embedder: OnnxEmbedder) -> None:
    head = "word " * 150
    a = embedder.embed_queries([head + "pipelines gas energy exports " * 20])[0]
    b = embedder.embed_queries([head + "football tennis cricket golf " * 20])[0]
    assert float(a @ b) < 0.995  # text past token 128 still shapes the vector
    assert embedder.count_tokens([head])[0] == 150


def test_separately_embedded_sentence_vectors_match_their_own_embeddings() -> None:
    embedder = OnnxEmbedder(batch_tokens=64, pool_sentences=False)
    text = "Putin praised the plan. The pipeline runs via Mongolia."
    spans = [(0, 23), (24, len(text))]
    [pv] = embedder.embed_passages([text], [spans])
    alone = embedder.embed_queries([text[s:e] for s, e in spans])
    assert np.allclose(pv.sentences, alone, atol=2e-3)
    assert pv.passage.shape == (384,)


def test_pooled_sentence_vectors_stay_closest_to_their_own_sentence(embedder: OnnxEmbedder) -> None:
    text = "Putin praised the peace plan in Moscow. The gas pipeline runs via Mongolia to northern China."
    spans = [(0, 38), (39, len(text))]
    [pv] = embedder.embed_passages([text], [spans])
    alone = embedder.embed_queries([text[s:e] for s, e in spans])
    assert pv.sentences.shape == (2, 384)
    assert np.allclose(np.linalg.norm(pv.sentences, axis=1), 1.0, atol=1e-5)
    similarity = pv.sentences @ alone.T
    assert similarity[0, 0] > similarity[0, 1] and similarity[1, 1] > similarity[1, 0]
    # the passage vector is the same whether sentences are pooled or embedded again
    assert np.allclose(pv.passage, embedder.embed_queries([text])[0], atol=2e-3)


def test_batches_run_side_by_side_give_the_vectors_one_at_a_time_does() -> None:
    texts = [
        f"Article {i}: Putin and Xi discussed gas deliveries and the {i}-point plan in Moscow." * (1 + i % 4)
        for i in range(24)
    ]
    spans = [[(0, len(t) // 2), (len(t) // 2 + 1, len(t))] for t in texts]
    serial = OnnxEmbedder(batch_tokens=256, threads=1).embed_passages(texts, spans)
    parallel = OnnxEmbedder(batch_tokens=256, threads=3).embed_passages(texts, spans)
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a.passage, b.passage)
        assert np.array_equal(a.sentences, b.sentences)
