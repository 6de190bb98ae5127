"""The plain llama-index pipeline the benchmarks compare against, as a first prototype builds it.

`VectorStoreIndex.from_documents` over `ChromaVectorStore` with 256-token chunks
(`SentenceSplitter(chunk_size=256, chunk_overlap=50)`: 11,2xx chunks of news-quiz, near the
issue's 11,019; the default overlap of 200 would cut 53,000),
embedding with the same int8 MiniLM either as shipped (`shipped`: tokenizer.json's fixed padding
and truncation at 128, onnxruntime's default session, batches of 32: what the issue measured) or
through our embedder (`ours`). Imported only by benchmarks: llama-index is slow to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding import normalise
from rag.models import Article

COLLECTION = "baseline"


class ShippedMiniLM:
    """The int8 MiniLM run the plain way: tokenizer.json as shipped (pads and truncates at 128),
    onnxruntime's default session, mean pooling. Counts what it is handed and what it runs over.
    An `Embedder` for `rag.llamaindex.EmbedderAdapter` (questions and passages alike)."""

    name = "all-MiniLM-L6-v2-int8-as-shipped"
    dim = 384

    def __init__(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from rag.embedding import minilm_files

        model, tokenizer = minilm_files()
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.counter = Tokenizer.from_file(str(tokenizer))
        self.counter.no_padding()
        self.counter.no_truncation()
        self.session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.tokens = 0
        self.model_tokens = 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        self.tokens += sum(len(e.ids) for e in self.counter.encode_batch(texts, add_special_tokens=False))
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        self.model_tokens += int(mask.sum()) - 2 * len(texts)
        (states,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": ids * 0})
        pooled = (states * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return normalise(pooled)

    embed_texts = embed_queries  # MiniLM has no question prefix


class OursCounted:
    """Our embedder behind the same interface, counting tokens the same way."""

    dim = 384

    def __init__(self) -> None:
        from rag.embedding import OnnxEmbedder

        self.embedder = OnnxEmbedder()
        self.name = self.embedder.name
        self.tokens = 0
        self.model_tokens = 0

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        lengths = self.embedder.count_tokens(texts)
        self.tokens += sum(lengths)
        self.model_tokens += sum(min(n, 254) for n in lengths)
        return self.embedder.embed_queries(texts)

    embed_texts = embed_queries  # MiniLM has no question prefix


def embed_model(embedder: ShippedMiniLM | OursCounted) -> Any:
    """A llama-index embedding model around `embedder`, batches of 32 (passed explicitly: the default is OpenAI)."""
    from rag.llamaindex import EmbedderAdapter

    return EmbedderAdapter(embedder, embed_batch_size=32)  # type: ignore[arg-type]


def plain_index(articles: Sequence[Article], model: Any, path: Path, build: bool = True) -> Any:
    """The llama-index VectorStoreIndex over a Chroma collection at `path` (built unless `build` is False)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))
    store = ChromaVectorStore(chroma_collection=client.get_or_create_collection(COLLECTION, embedding_function=None))
    if not build:
        return VectorStoreIndex.from_vector_store(store, embed_model=model)
    documents = [Document(text=a.text, metadata={"article_id": a.id}) for a in articles]
    return VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        transformations=[SentenceSplitter(chunk_size=256, chunk_overlap=50)],
        embed_model=model,
    )


def chunk_count(index: Any) -> int:
    return int(index.vector_store._collection.count())
