from __future__ import annotations

import numpy as np

from eval.baseline import BaselineTarget
from eval.datasets import Evidence, Question
from rag.llamaindex import EmbedderAdapter
from rag.loading import load_text_file
from rag.pipeline import Pipeline
from tests.conftest import SEEDS


def test_adapter_gives_llama_index_the_same_vectors_as_our_embedder(pipeline: Pipeline) -> None:
    adapter = EmbedderAdapter(pipeline.embedder)
    text = "Putin said the plan could serve as a basis."
    ours = pipeline.embedder.embed_queries([text])[0]
    assert np.allclose(adapter.get_query_embedding(text), ours, atol=1e-6)
    assert np.allclose(adapter.get_text_embedding_batch([text, text])[1], ours, atol=1e-6)


def test_plain_llama_index_baseline_retrieves_from_an_in_memory_chroma(pipeline: Pipeline) -> None:
    articles = load_text_file(SEEDS / "002_353d98a7930780b3.txt") + load_text_file(SEEDS / "003_99b702be79d94449.txt")
    target = BaselineTarget(articles, pipeline.embedder)
    question = Question("q", "How much gas would Power of Siberia 2 deliver?", True, evidence=(Evidence("x"),))
    outcome = target.run(question)
    assert outcome.retrieved and {p.article_id for p in outcome.retrieved} <= {a.id for a in articles}
    assert target.retrieval_only
