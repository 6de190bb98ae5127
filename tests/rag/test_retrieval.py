from __future__ import annotations

import itertools

import numpy as np
import pytest

from rag.lexical import TERMS_VERSION, passage_terms
from rag.models import Filters
from rag.pipeline import Pipeline
from rag.policies import RetrievalPolicy
from rag.retrieval import HybridRetriever
from rag.snapshot import chunk_terms
from rag.storage import _chunk_from_row
from rag.text import setting_phrases, setting_terms, terms


def test_hybrid_ranking_records_both_retrievers(pipeline: Pipeline) -> None:
    result = pipeline.retriever.retrieve("Power of Siberia 2 pipeline through Mongolia", top_k=5)
    top = result.hits[0]
    assert "Power of Siberia 2" in top.chunk.text
    assert top.dense_rank is not None and top.lexical_rank is not None
    assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(result.hits, result.hits[1:], strict=False))


def test_lexical_retrieval_finds_rare_exact_terms(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    hits = snapshot.lexical.top(terms("Kishida"), 3)
    assert hits and "Kishida" in snapshot.read([hits[0][0]])[hits[0][0]].chunk.text


def test_filters_restrict_both_retrievers(pipeline: Pipeline) -> None:
    only = "003_99b702be79d94449.txt"
    result = pipeline.retriever.retrieve("What did Putin say about gas?", top_k=10, filters=Filters(sources=(only,)))
    assert result.hits and all(h.chunk.source == only for h in result.hits)
    ids = ("002_353d98a7930780b3-1",)
    result = pipeline.retriever.retrieve("gas", top_k=10, filters=Filters(article_ids=ids))
    assert result.hits and all(h.chunk.article_id == ids[0] for h in result.hits)


def test_retrieval_is_deterministic(pipeline: Pipeline) -> None:
    a = pipeline.retriever.retrieve("Xi on sanctions", top_k=10).hits
    b = pipeline.retriever.retrieve("Xi on sanctions", top_k=10).hits
    assert [h.chunk.id for h in a] == [h.chunk.id for h in b]


def test_term_views_match_the_chunks_they_describe(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    read = snapshot.read(range(len(snapshot)))
    assert len(read) == len(snapshot) == len(pipeline.store.visible_chunks())
    by_article: dict[str, set[str]] = {}
    for row, passage in read.items():
        chunk = passage.chunk
        assert chunk.id == snapshot.chunk_id(row) and chunk.article_id == snapshot.article_of(row)
        assert passage.passage_terms == frozenset(terms(f"{chunk.title}\n{chunk.text}"))
        assert len(passage.terms) == len(chunk.sentences) == len(passage.vectors)
        by_article.setdefault(chunk.article_id, set()).update(passage.passage_terms)
    assert snapshot.article_count == len(by_article) == 7
    for article_id, expected in by_article.items():
        assert snapshot.article_terms(article_id) == expected
        assert [snapshot.article_of(r) for r in snapshot.article_rows(article_id)] == [article_id] * len(
            snapshot.article_rows(article_id)
        )
    assert snapshot.article_terms("no-such-article") == frozenset()


def test_a_replica_holds_no_text_and_reads_only_the_hits(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    retriever = HybridRetriever(pipeline.store, pipeline.embedder, pipeline.retriever.policy)
    snapshot = retriever.refresh()
    assert len(retriever.passages._chunks) == 0  # a load reads no text
    asked: list[int] = []
    read = pipeline.store.read_chunks
    monkeypatch.setattr(pipeline.store, "read_chunks", lambda ids: asked.append(len(ids)) or read(ids))
    hits = retriever.retrieve("Power of Siberia 2 pipeline through Mongolia", top_k=5).hits
    assert hits and sum(asked) <= max(5, retriever.policy.rerank_depth) < len(snapshot)
    asked.clear()
    assert [h.chunk.id for h in retriever.retrieve("Power of Siberia 2 pipeline through Mongolia", top_k=5).hits] == [
        h.chunk.id for h in hits
    ]
    assert asked == []  # read again from the cache


def test_passages_whose_sentence_answers_are_ranked_first(pipeline: Pipeline) -> None:
    # Fused alone ranks a passage about the plan's lack of detail first; the passage saying when it was
    # issued ("a 12-point peace proposal issued in February 2023") has the sentence that answers.
    question = "When did China issue its 12-point peace proposal for Ukraine?"
    hits = pipeline.retriever.retrieve(question, top_k=5).hits
    assert "issued in February 2023" in hits[0].chunk.text
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    plain = (
        HybridRetriever(pipeline.store, pipeline.embedder, RetrievalPolicy(rerank_depth=0))
        .retrieve(question, top_k=5)
        .hits
    )
    assert "issued in February 2023" not in plain[0].chunk.text


def test_filtered_exact_search_matches_chromas(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    vector = pipeline.embedder.embed_queries(["What did Putin say about gas supplies?"])[0]
    only = Filters(sources=("003_99b702be79d94449.txt", "000_26e4b23e68a8d043.txt"))
    mask = snapshot.mask(only)
    assert mask is not None and 0 < mask.sum() < len(snapshot)
    ours = [snapshot.chunk_id(i) for i in snapshot.search(vector, 5, mask)]
    chroma = [chunk_id for chunk_id, _ in pipeline.store.query(vector, 5, only)]
    assert ours == chroma


def test_exact_search_over_everything_matches_chromas(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    vector = pipeline.embedder.embed_queries(["How much gas does Russia send to China?"])[0]
    ours = [snapshot.chunk_id(i) for i in snapshot.search(vector, 10)]
    chroma = [chunk_id for chunk_id, _ in pipeline.store.query(vector, 10)]
    assert ours == chroma
    assert len(ours) == 10


def test_dense_search_is_chromas_except_over_small_filtered_subsets(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    query = pipeline.store.query
    monkeypatch.setattr(pipeline.store, "query", lambda *a, **k: calls.append(1) or query(*a, **k))
    question = "How much gas does Russia send to China?"
    pipeline.retriever.retrieve(question, top_k=5)
    assert calls == [1]  # unfiltered: Chroma's HNSW index, at any size
    only = Filters(sources=("003_99b702be79d94449.txt", "000_26e4b23e68a8d043.txt"))
    exact = pipeline.retriever.retrieve(question, top_k=5, filters=only)
    assert calls == [1]  # a filter keeping a few chunks: exact, over their vectors
    through_chroma = HybridRetriever(pipeline.store, pipeline.embedder, RetrievalPolicy(exact_limit=0)).retrieve(
        question, top_k=5, filters=only
    )
    assert calls == [1, 1]
    assert [h.chunk.id for h in through_chroma.hits] == [h.chunk.id for h in exact.hits]


def test_exact_search_edges(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    vector = pipeline.embedder.embed_queries(["gas"])[0]
    assert snapshot.search(vector, 5, np.zeros(len(snapshot), dtype=bool)) == []
    everything = snapshot.search(vector, 10_000)
    assert sorted(everything) == list(range(len(snapshot)))  # k past the rows: every row, once
    one = np.zeros(len(snapshot), dtype=bool)
    one[7] = True
    assert snapshot.search(vector, 3, one) == [7]


def test_bm25_terms_are_stored_with_each_chunk_and_read_back(pipeline: Pipeline) -> None:
    stored = pipeline.store.visible_chunks()
    assert stored
    assert all(s.terms == passage_terms(s.chunk.title, s.chunk.text) for s in stored)
    snapshot = pipeline.retriever.refresh()
    rows = [snapshot.row_of(s.chunk.id) for s in stored]
    assert None not in rows
    read = snapshot.read([r for r in rows if r is not None])
    assert all(read[r].passage_terms == frozenset(s.terms or ()) for r, s in zip(rows, stored, strict=True) if r)


def test_the_terms_version_changes_with_the_tokeniser() -> None:
    # Stored terms are trusted while TERMS_VERSION matches: a change to how text is tokenised must bump it.
    # If this fails, bump rag.lexical.TERMS_VERSION and update the expected terms and version here.
    text = "Xi Jinping’s year-end talks with Putin: U.S. sanctions, China's 12-point plan and 98 billion cu. meters."
    expected = (
        "gas deal xi jinp year-end year end talk putin us sanction china 12-point 12 point plan 98 billion cu meter"
    )
    assert (TERMS_VERSION, passage_terms("Gas deals", text)) == (1, tuple(expected.split()))


def test_chunks_stored_by_another_tokeniser_are_tokenised_afresh(pipeline: Pipeline) -> None:
    chunk_id = pipeline.store.visible_chunks()[0].chunk.id
    with pipeline.store._using() as (chunk_col, _, _):
        got = chunk_col.get(ids=[chunk_id], include=["metadatas", "documents"])
    meta = {**got["metadatas"][0], "terms_version": TERMS_VERSION - 1, "terms": "stale words"}
    old = _chunk_from_row(chunk_id, got["documents"][0], meta)
    assert old.terms is None
    assert chunk_terms(old) == passage_terms(old.chunk.title, old.chunk.text)
    assert "stale" not in chunk_terms(old)
    missing = _chunk_from_row(chunk_id, got["documents"][0], {k: v for k, v in meta.items() if k != "terms_version"})
    assert missing.terms is None  # stored before terms were kept


def test_the_topic_of_a_question_with_a_hyphenated_word_is_found(pipeline: Pipeline) -> None:
    # With "year-end" counted three times, passages about the year-end call outranked Xi's words on sanctions. The
    # weighting itself is checked in tests/rag/test_question.py; here, that his words are still found.
    question = "What did Xi tell Putin about sanctions during their year-end video call?"
    hits = pipeline.retriever.retrieve(question, top_k=10).hits
    assert any("doomed to fail" in h.chunk.text for h in hits)


def test_a_question_names_its_setting_after_during_at_in_after_before() -> None:
    question = "How did Putin rate Russia's relations with China during the December 2022 video call with Xi?"
    assert setting_phrases(question) == ["the December 2022 video call with Xi"]
    assert setting_terms(question) == frozenset(terms("December 2022 video call with Xi"))
    assert setting_phrases("What did Xi say at the Samarkand meeting, and what did Putin reply?") == [
        "the Samarkand meeting"
    ]
    # Phrases holding a question word or an auxiliary are what is asked, not where or when.
    assert setting_phrases("In which building in Beijing did Putin and Xi hold their talks?") == []
    assert setting_phrases("What did Putin say about China's 12-point plan?") == []


def test_a_sentence_need_not_repeat_the_setting_its_article_names(pipeline: Pipeline) -> None:
    # "Putin extended the invitation to Xi Jinping during a video call" restates the setting and, with the
    # setting's whole weight, outranked the passage whose sentence answers ("best in history").
    question = "How did Putin rate Russia's relations with China during the December 2022 video call with Xi?"
    hits = pipeline.retriever.retrieve(question, top_k=5).hits
    assert "best in history" in hits[0].chunk.text
    whole = HybridRetriever(pipeline.store, pipeline.embedder, RetrievalPolicy(rerank_setting_weight=0.0))
    assert "best in history" not in whole.retrieve(question, top_k=5).hits[0].chunk.text
