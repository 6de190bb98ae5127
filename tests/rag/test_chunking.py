from __future__ import annotations

import pytest

from rag.chunking import Chunker, split_sentences
from rag.embedding import OnnxEmbedder
from rag.indexing import make_prefix
from tests.rag.test_loading import all_seed_articles


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return OnnxEmbedder()


def sentences(text: str) -> list[str]:
    return [text[s.start : s.end] for s in split_sentences(text)]


def test_sentences_respect_abbreviations_and_quotes() -> None:
    text = "Mr. Xi met Mr. Putin in the U.S. capital. “We agree,” he said. Talks resume on Dec. 5 in Moscow! Really?"
    assert sentences(text) == [
        "Mr. Xi met Mr. Putin in the U.S. capital.",
        "“We agree,” he said.",
        "Talks resume on Dec. 5 in Moscow!",
        "Really?",
    ]


def test_a_newline_always_ends_a_sentence() -> None:
    assert sentences("Gas, Internet\nThe agreement also pushed forward") == [
        "Gas, Internet",
        "The agreement also pushed forward",
    ]


def test_chunks_are_exact_slices_within_the_body_and_the_token_budget(embedder: OnnxEmbedder) -> None:
    prefix = make_prefix("title")
    chunker = Chunker(embedder.count_tokens, max_tokens=200, overlap_sentences=1, prefix=prefix)
    for article in all_seed_articles():
        chunks = chunker.split(article)
        assert chunks
        for chunk in chunks:
            assert article.text[chunk.start : chunk.end] == chunk.text
            assert any(b.start <= chunk.start and chunk.end <= b.end for b in article.body)
            assert chunk.sentences[0].start == chunk.start and chunk.sentences[-1].end == chunk.end
            embedded = embedder.count_tokens([f"{prefix(article)}\n{chunk.text}"])[0] + 2
            assert embedded <= 256
        # every sentence of the body is in some chunk
        covered = {(s.start, s.end) for c in chunks for s in c.sentences}
        for body in article.body:
            for s in split_sentences(article.text, body.start, body.end):
                assert (s.start, s.end) in covered


def test_chunk_ids_are_stable_and_follow_content(embedder: OnnxEmbedder) -> None:
    chunker = Chunker(embedder.count_tokens, max_tokens=120)
    article = all_seed_articles()[0]
    assert [c.id for c in chunker.split(article)] == [c.id for c in chunker.split(article)]
    assert len({c.id for c in chunker.split(article)}) == len(chunker.split(article))


def test_overlong_sentences_are_cut_to_fit(embedder: OnnxEmbedder) -> None:
    from rag.loading import article_from_body

    article = article_from_body("long", "A list", " ".join(f"item{i}, " for i in range(400)), "test")
    chunks = Chunker(embedder.count_tokens, max_tokens=64, overlap_sentences=0).split(article)
    assert len(chunks) > 3
    assert all(embedder.count_tokens([c.text])[0] <= 64 for c in chunks)
