"""The baseline: a plain llama-index pipeline on our embedding model, retrieval only.

`VectorStoreIndex.from_documents` over a `ChromaVectorStore` with the default `SentenceSplitter`
and `as_retriever(similarity_top_k=10)`: what a first llama-index prototype would do, so every
report shows how far ahead the tuned pipeline is. Same embedder, same articles, no date window.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval.datasets import Question
from eval.metrics import Outcome, Passage
from eval.targets import DEPTH
from rag.embedding import Embedder
from rag.models import Article

_COLLECTION = "baseline"


def _client(path: Path | None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if path is None:
        return chromadb.EphemeralClient(settings=chroma_settings)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


class BaselineTarget:
    """llama-index defaults over the same articles. `path`: where to keep its Chroma index (None: memory)."""

    name = "baseline (plain llama-index)"
    retrieval_only = True

    def __init__(self, articles: Sequence[Article], embedder: Embedder, path: Path | None = None) -> None:
        from llama_index.core import Document, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.vector_stores.chroma import ChromaVectorStore

        from rag.llamaindex import EmbedderAdapter

        embed_model = EmbedderAdapter(embedder, embed_batch_size=32)
        # Chroma's default embedding function downloads a model: the collection never embeds, we give vectors.
        client = _client(path)
        done = path / "complete" if path is not None else None
        if done is not None and not done.exists() and _COLLECTION in [c.name for c in client.list_collections()]:
            client.delete_collection(_COLLECTION)  # an interrupted build: start again
        collection = client.get_or_create_collection(_COLLECTION, embedding_function=None)
        store = ChromaVectorStore(chroma_collection=collection)
        if done is not None and done.exists():
            index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
        else:
            documents = [
                Document(
                    text=a.text,
                    metadata={"article_id": a.id},
                    excluded_embed_metadata_keys=["article_id"],
                    excluded_llm_metadata_keys=["article_id"],
                )
                for a in articles
            ]
            index = VectorStoreIndex.from_documents(
                documents,
                storage_context=StorageContext.from_defaults(vector_store=store),
                transformations=[SentenceSplitter()],
                embed_model=embed_model,
            )
            if done is not None:
                done.write_text("built\n")
        self._retriever = index.as_retriever(similarity_top_k=DEPTH)

    def run(self, question: Question) -> Outcome:
        started = time.perf_counter()
        nodes = self._retriever.retrieve(question.question)
        latency = (time.perf_counter() - started) * 1000
        retrieved = [Passage(str(n.node.metadata.get("article_id", "")), n.node.get_content()) for n in nodes]
        return Outcome(answer="", answerable=False, citations=[], retrieved=retrieved, latency_ms=latency)
