"""Query latency and memory against corpus size: `python -m bench.scale [--sizes 1000 10000 100000]`.

Synthetic articles are recombined from the real sentences of an existing index (`--source`, by
default the cached news-quiz index that `rag eval --news-quiz` builds, else the seeds): each
synthetic chunk strings together `--sentences` sentences drawn at random, each sentence keeps the
vector the real embedder gave it, and the chunk's vector is the normalised mean of its sentences'
vectors (an approximation of embedding the recombined text, which would take hours at 100k
chunks). The store grows to each size in turn; at each size a fresh `rag serve` (uvicorn as
shipped) is started on it, and the table shows its start time and RSS after start, then /query
latency at concurrency 1 over HTTP with the in-process stage split from the responses' timings, and the time a
second start on the same data takes (a restarted replica: its lexical index is reopened, not rebuilt).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np

from bench.service import rss_mb, running_service
from rag.chunking import chunk_id
from rag.models import Article, Chunk, Span
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.storage import ChromaStore, StoredChunk

NEWS_QUIZ_INDEX = Path("eval/.cache/news-quiz/title-200-1-pooled")
NEWS_QUIZ_QUESTIONS = Path("../shared/corpora/news-quiz/queries-dev.jsonl")
SEED_QUESTIONS = Path("eval/questions/seeds.jsonl")
CHUNKS_PER_ARTICLE = 8


def sentence_pool(source: Path) -> tuple[list[str], np.ndarray]:
    """Every distinct sentence of the source index with its stored vector."""
    if not (source / "chroma").is_dir():
        raise SystemExit(f"{source} holds no index: run `rag eval --news-quiz` first, or pass --source")
    store = build_pipeline(Settings(data_dir=source, ingest_on_start=False)).store
    texts: dict[str, np.ndarray] = {}
    stored: list[StoredChunk] = store.visible_chunks()
    for item in stored:
        chunk = item.chunk
        for span, vector in zip(chunk.sentences, item.sentence_vectors, strict=True):
            text = " ".join(chunk.text[span.start - chunk.start : span.end - chunk.start].split())
            if len(text) > 20:
                texts.setdefault(text, vector)
    return list(texts), np.stack(list(texts.values()))


def synthetic_articles(
    count: int, first: int, pool: tuple[list[str], np.ndarray], per_chunk: int, rng: random.Random
) -> list[tuple[Article, list[Chunk], np.ndarray, list[np.ndarray]]]:
    sentences, vectors = pool
    out = []
    for n in range(first, first + count):
        picks = [[rng.randrange(len(sentences)) for _ in range(per_chunk)] for _ in range(CHUNKS_PER_ARTICLE)]
        title = f"Synthetic article {n}"
        parts, spans, pos = [], [], len(title) + 2
        for group in picks:
            chunk_spans = []
            for i in group:
                chunk_spans.append(Span(pos, pos + len(sentences[i])))
                parts.append(sentences[i])
                pos += len(sentences[i]) + 1
            spans.append(chunk_spans)  # each sentence is followed by " ", or "\n" at a chunk's end
        text = title + "\n\n" + "\n".join(" ".join(sentences[i] for i in group) for group in picks)
        published = date(2012, 1, 1) + timedelta(days=rng.randrange(4000))
        article = Article(
            id=f"synthetic-{n}",
            title=title,
            text=text,
            body=(Span(len(title) + 2, len(text)),),
            source="synthetic",
            source_file="synthetic.jsonl",
            source_start=0,
            source_end=len(text),
            published_at=published,
        )
        digest = article.content_hash
        chunks, passage, sentence_vectors = [], [], []
        for index, (group, chunk_spans) in enumerate(zip(picks, spans, strict=True)):
            start, end = chunk_spans[0].start, chunk_spans[-1].end
            assert text[start:end] == " ".join(sentences[i] for i in group)
            chunks.append(
                Chunk(
                    id=chunk_id(article.id, digest, start, end),
                    article_id=article.id,
                    article_hash=digest,
                    index=index,
                    text=text[start:end],
                    start=start,
                    end=end,
                    sentences=tuple(chunk_spans),
                    title=title,
                    source="synthetic",
                    published_at=published,
                )
            )
            mine = vectors[group]
            mean = mine.mean(axis=0)
            passage.append(mean / max(float(np.linalg.norm(mean)), 1e-12))
            sentence_vectors.append(mine)
        out.append((article, chunks, np.stack(passage).astype(np.float32), sentence_vectors))
    return out


def questions(limit: int) -> list[str]:
    path = NEWS_QUIZ_QUESTIONS if NEWS_QUIZ_QUESTIONS.is_file() else SEED_QUESTIONS
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line)["question"] for line in handle if line.strip()][:limit]


def measure(data_dir: Path, asked: list[str], chunks: int) -> str:
    env = {"RAG_DATA_DIR": str(data_dir), "RAG_INGEST_ON_START": "false", "RAG_REFRESH_SECONDS": "3600"}
    started = time.perf_counter()
    with running_service(env, timeout=1800) as (url, server):
        ready = time.perf_counter() - started
        rss_start = rss_mb(server.pid)
        latencies: list[float] = []
        stages: dict[str, list[float]] = {}
        with httpx.Client(base_url=url, timeout=60) as client:
            for question in asked[:5]:  # warm-up
                client.post("/query", json={"question": question})
            for question in asked:
                t = time.perf_counter()
                response = client.post("/query", json={"question": question})
                latencies.append((time.perf_counter() - t) * 1000)
                response.raise_for_status()
                for stage, value in response.json().get("timings_ms", {}).items():
                    stages.setdefault(stage, []).append(value)
        rss_after = rss_mb(server.pid)
    started = time.perf_counter()
    with running_service(env, timeout=1800):  # a restart: the lexical index on disk is reopened, not rebuilt
        restart = time.perf_counter() - started
    latencies.sort()
    split = " / ".join(
        f"{statistics.median(stages.get(s, [0])):.1f}" for s in ("embed", "dense", "lexical", "fuse", "answer")
    )
    return (
        f"| {chunks:,} | {ready:.1f} | {restart:.1f} | {rss_start:.0f} | {statistics.median(latencies):.1f} | "
        f"{latencies[int(0.95 * (len(latencies) - 1))]:.1f} | {split} | {rss_after:.0f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--source", type=Path, default=NEWS_QUIZ_INDEX)
    parser.add_argument("--sentences", type=int, default=6, help="sentences per synthetic chunk")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None, help="where the synthetic index grows (temp)")
    args = parser.parse_args()

    pool = sentence_pool(args.source)
    print(f"cores: {os.cpu_count()}  source: {args.source} ({len(pool[0]):,} distinct sentences)")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="newsrag-scale-"))
    store: ChromaStore = build_pipeline(Settings(data_dir=data_dir, ingest_on_start=False)).store
    asked = questions(args.questions)
    rng = random.Random(20260613)
    rows = []
    have = store.count_chunks()
    for size in sorted(args.sizes):
        started = time.perf_counter()
        while have < size:
            batch = min(100, -(-(size - have) // CHUNKS_PER_ARTICLE))
            first = have // CHUNKS_PER_ARTICLE
            store.write_articles(synthetic_articles(batch, first, pool, args.sentences, rng))
            have += batch * CHUNKS_PER_ARTICLE
        store.touch()
        print(f"  {have:,} chunks written in {time.perf_counter() - started:.0f} s", flush=True)
        rows.append(measure(data_dir, asked, have))
        print("  " + rows[-1], flush=True)
    print()
    print(
        "| chunks | start s | restart s | RSS after start MB | p50 ms | p95 ms "
        "| embed / dense / lexical / fuse / answer ms (p50) | RSS after queries MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        print(row)
    print(f"(/query over HTTP at concurrency 1, {len(asked)} questions; index at {data_dir})")


if __name__ == "__main__":
    main()
