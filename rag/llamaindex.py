"""Adapters for llama-index users: our retriever, our cited answers and our embedder, as llama-index objects.

Installed with the `llamaindex` extra (`pip install 'newsrag[llamaindex]'`); the service never imports this
module, since importing llama-index takes seconds and 30-odd packages.

```python
from rag.llamaindex import NewsragQueryEngine, NewsragRetriever
from rag.pipeline import build_pipeline
from rag.settings import Settings

pipeline = build_pipeline(Settings())
nodes = NewsragRetriever(pipeline, top_k=5).retrieve("What did Putin say about China's 12-point plan?")
response = NewsragQueryEngine(pipeline).query("What did Putin say about China's 12-point plan?")
print(response.response, response.metadata["answerable"], [n.node.metadata["quote"] for n in response.source_nodes])
```
"""

from __future__ import annotations

from datetime import date
from typing import Any

from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.response.schema import Response
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
from pydantic import PrivateAttr

from rag.embedding import Embedder
from rag.errors import InvalidQuestion
from rag.models import Chunk, Citation, Filters, iso_day
from rag.pipeline import Pipeline

_LIST_FIELDS = {"source": "sources", "article_id": "article_ids"}


def _as_list(value: Any) -> tuple[str, ...]:
    values = value if isinstance(value, list | tuple | set) else [value]
    return tuple(str(v) for v in values)


def _as_day(value: Any) -> date:
    return value if isinstance(value, date) else iso_day(str(value))


def filters_from(metadata_filters: MetadataFilters | None) -> Filters | None:
    """Our `Filters` from llama-index's: `source` and `article_id` with == or in, `published_at` with >= or <=
    (a date or a YYYY-MM-DD string), joined by AND. Anything else raises InvalidQuestion naming it, rather
    than being silently ignored."""
    if metadata_filters is None or not metadata_filters.filters:
        return None
    if metadata_filters.condition not in (FilterCondition.AND, None):
        raise InvalidQuestion(f"filters: only AND is supported, not {metadata_filters.condition}")
    values: dict[str, Any] = {}
    for item in metadata_filters.filters:
        if not isinstance(item, MetadataFilter):
            raise InvalidQuestion("filters: nested filter groups are not supported")
        key, op = item.key, item.operator
        if key in _LIST_FIELDS and op in (FilterOperator.EQ, FilterOperator.IN):
            values[_LIST_FIELDS[key]] = values.get(_LIST_FIELDS[key], ()) + _as_list(item.value)
        elif key == "published_at" and op in (FilterOperator.GTE, FilterOperator.GT):
            values["date_from"] = _as_day(item.value)
        elif key == "published_at" and op in (FilterOperator.LTE, FilterOperator.LT):
            values["date_to"] = _as_day(item.value)
        else:
            raise InvalidQuestion(f"filters: {key} {op.value} is not supported (source, article_id, published_at)")
    return Filters(**values)


def _metadata(chunk: Chunk) -> dict[str, Any]:
    return {
        "article_id": chunk.article_id,
        "title": chunk.title,
        "source": chunk.source,
        "published_at": chunk.published_at.isoformat() if chunk.published_at else None,
        "url": chunk.url,
        "start": chunk.start,
        "end": chunk.end,
    }


def _node(chunk: Chunk, score: float, **extra: Any) -> NodeWithScore:
    return NodeWithScore(
        node=TextNode(id_=chunk.id, text=chunk.text, metadata={**_metadata(chunk), **extra}), score=score
    )


class NewsragRetriever(BaseRetriever):
    """Our hybrid retriever as a llama-index retriever: nodes are passages (id = chunk id), with the article's
    id, title, source, date, url and the passage's character offsets in metadata."""

    def __init__(
        self, pipeline: Pipeline, top_k: int = 5, filters: MetadataFilters | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._pipeline = pipeline
        self._top_k = top_k
        self._filters = filters_from(filters)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        retrieval = self._pipeline.retriever.retrieve(query_bundle.query_str, self._top_k, self._filters)
        return [_node(hit.chunk, hit.score) for hit in retrieval.hits]


def _cited_node(citation: Citation, chunk: Chunk | None) -> NodeWithScore:
    quote = {"n": citation.n, "quote": citation.quote, "quote_start": citation.quote_start}
    quote["quote_end"] = citation.quote_end
    if chunk is not None:
        return _node(chunk, 1.0, **quote)
    node = TextNode(id_=citation.chunk_id, text=citation.passage, metadata={"article_id": citation.article_id, **quote})
    return NodeWithScore(node=node, score=1.0)


class NewsragQueryEngine(BaseQueryEngine):
    """Our cited answers as a llama-index query engine: `Response.response` is the answer, `source_nodes` the
    cited passages (each with the quoted sentence and its offsets), and `metadata` holds `answerable`,
    `confidence`, `mode` and the `citations`."""

    def __init__(self, pipeline: Pipeline, top_k: int | None = None, filters: MetadataFilters | None = None) -> None:
        super().__init__(callback_manager=None)
        self._pipeline = pipeline
        self._top_k = top_k
        self._filters = filters_from(filters)

    def _get_prompt_modules(self) -> dict[str, Any]:
        return {}  # no prompts of llama-index's: the answer is ours

    def _query(self, query_bundle: QueryBundle) -> Response:
        answer = self._pipeline.ask(query_bundle.query_str, top_k=self._top_k, filters=self._filters)
        chunks = {hit.chunk.id: hit.chunk for hit in answer.retrieved}
        return Response(
            response=answer.text,
            source_nodes=[_cited_node(c, chunks.get(c.chunk_id)) for c in answer.citations],
            metadata={
                "answerable": answer.answerable,
                "confidence": answer.confidence,
                "mode": answer.mode,
                "citations": [
                    {"n": c.n, "article_id": c.article_id, "title": c.title, "quote": c.quote} for c in answer.citations
                ],
            },
        )

    async def _aquery(self, query_bundle: QueryBundle) -> Response:
        return self._query(query_bundle)


class EmbedderAdapter(BaseEmbedding):
    """A llama-index embedding model backed by one of our embedders (same vectors, no download).

    Pass it explicitly as `embed_model`: llama-index's default is OpenAI, which fails offline.
    """

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
        super().__init__(model_name=embedder.name, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "NewsragEmbedderAdapter"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed_queries([query])[0]]

    def _get_text_embedding(self, text: str) -> list[float]:
        return [float(x) for x in self._embedder.embed_texts([text])[0]]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed_texts(texts)]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)
