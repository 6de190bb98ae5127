from __future__ import annotations

from datetime import date

import numpy as np

from eval.baseline import BaselineTarget
from eval.datasets import Evidence, Question
from rag.llamaindex import EmbedderAdapter, NewsragQueryEngine, NewsragRetriever, filters_from
from rag.loading import load_text_file
from rag.models import Filters
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


def test_our_retriever_plugs_into_llama_indexs_retriever_evaluator(pipeline: Pipeline, seed_questions: dict) -> None:
    from llama_index.core.evaluation import RetrieverEvaluator

    retriever = NewsragRetriever(pipeline, top_k=5)
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr"], retriever=retriever)
    hits = []
    for qid in ("seeds-001", "seeds-019", "seeds-033"):
        row = seed_questions[qid]
        evidence = [e["text"] for e in row["evidence"]]
        expected = [s.chunk.id for s in pipeline.store.visible_chunks() if any(e in s.chunk.text for e in evidence)]
        result = evaluator.evaluate(query=row["question"], expected_ids=expected)
        hits.append(result.metric_vals_dict["hit_rate"])
        node = retriever.retrieve(row["question"])[0].node
        assert {"article_id", "title", "source", "published_at", "url", "start", "end"} <= node.metadata.keys()
        article = pipeline.document(node.metadata["article_id"])
        assert article.text is not None and article.text[node.metadata["start"] : node.metadata["end"]] == node.text
    assert hits == [1.0, 1.0, 1.0]


def test_our_query_engine_answers_with_its_citations_as_source_nodes(pipeline: Pipeline) -> None:
    response = NewsragQueryEngine(pipeline).query("What did Putin say about China's 12-point plan?")
    assert "basis" in str(response) and response.metadata["answerable"] is True
    assert response.source_nodes and len(response.source_nodes) == len(response.metadata["citations"])
    for node, citation in zip(response.source_nodes, response.metadata["citations"], strict=True):
        assert citation["quote"] in node.node.get_content() and node.node.metadata["quote"] == citation["quote"]
    refused = NewsragQueryEngine(pipeline).query("What is a good recipe for beef stroganoff?")
    assert refused.metadata["answerable"] is False and refused.source_nodes == []


def test_llama_index_metadata_filters_map_to_ours(pipeline: Pipeline) -> None:
    import pytest
    from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

    from rag.errors import InvalidQuestion

    wanted = MetadataFilters(
        filters=[
            MetadataFilter(key="source", value="002_353d98a7930780b3.txt"),
            MetadataFilter(key="published_at", value="2022-01-01", operator=FilterOperator.GTE),
        ]
    )
    assert filters_from(wanted) == Filters(sources=("002_353d98a7930780b3.txt",), date_from=date(2022, 1, 1))
    only = NewsragRetriever(pipeline, top_k=3, filters=MetadataFilters(filters=[wanted.filters[0]]))
    assert {n.node.metadata["source"] for n in only.retrieve("What did Putin say?")} == {"002_353d98a7930780b3.txt"}
    with pytest.raises(InvalidQuestion, match="title"):
        filters_from(MetadataFilters(filters=[MetadataFilter(key="title", value="x")]))
