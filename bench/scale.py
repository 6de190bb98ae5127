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

Then (unless `--no-writes`) `chroma run` serves the same index to two replicas (`RAG_REFRESH_SECONDS` =
`--refresh`): one article is POSTed through the first, and `write_visible_s` is the time until the second
retrieves it for a question about it; meanwhile a question every 100 ms goes to the second, and
`max_query_ms_during_write` is the slowest of those asked from the POST until it was visible (and a second
after). Each replica starts from a copy of the lexical folder (and saved rows) the first start left, as a
deployment adds a replica. `replica_rss_mb` is the second replica's RSS then (a replica of a server holds no HNSW
index; `rss_mb`, embedded, does), `chroma_rss_mb` the server's. With `--json`, one JSON line per size on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np

from bench.races import chroma_server
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
WRITE_KEY = "bench-scale-write-key"


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


def measure(data_dir: Path, asked: list[str], chunks: int, extra: dict[str, str]) -> dict[str, float | int | str]:
    """One replica on the embedded index: start, RSS, /query latency over HTTP at c=1, then a restart."""
    env = {"RAG_DATA_DIR": str(data_dir), "RAG_INGEST_ON_START": "false", "RAG_REFRESH_SECONDS": "3600", **extra}
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
    return {
        "chunks": chunks,
        "start_s": round(ready, 1),
        "restart_s": round(restart, 1),
        "rss_mb": round(rss_start),
        "p50_ms": round(statistics.median(latencies), 1),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 1),
        "stages_p50_ms": split,
        "rss_after_queries_mb": round(rss_after),
    }


def measure_write(
    data_dir: Path, asked: list[str], refresh: float, extra: dict[str, str]
) -> dict[str, float | int | None]:
    """Two replicas on a Chroma server (`chroma run` over the same index): an article POSTed through one, timed
    until the other answers from it, while a question every 100 ms goes to the other."""
    # Each replica starts from a copy of the lexical folder the first measurement left (what a deployment does to
    # add a replica: copy a peer's RAG_LEXICAL_DIR); it then reads only what changed since, not every chunk.
    for n in (1, 2):
        target = data_dir / f"replica-{n}" / "lexical"
        if not target.exists() and (data_dir / "lexical").is_dir():
            shutil.copytree(data_dir / "lexical", target, ignore=shutil.ignore_patterns("lock"))
    proc, port = chroma_server(data_dir / "chroma")
    common = {
        "RAG_CHROMA_HOST": "127.0.0.1",
        "RAG_CHROMA_PORT": str(port),
        "RAG_INGEST_ON_START": "false",
        "RAG_REFRESH_SECONDS": str(refresh),
        "RAG_API_KEYS": WRITE_KEY,
        "RAG_RATE_LIMIT_PER_MINUTE": "0",
        **extra,
    }
    latencies: list[tuple[float, float]] = []  # (started, ms)
    stop = threading.Event()
    visible: float | None = None
    try:
        with (
            running_service({**common, "RAG_DATA_DIR": str(data_dir / "replica-1")}, timeout=1800) as (one, _),
            running_service({**common, "RAG_DATA_DIR": str(data_dir / "replica-2")}, timeout=1800) as (two, second),
        ):

            def reader() -> None:
                with httpx.Client(base_url=two, timeout=120) as client:
                    n = 0
                    while not stop.wait(0.1):
                        t = time.perf_counter()
                        client.post("/query", json={"question": asked[n % len(asked)]})
                        latencies.append((t, (time.perf_counter() - t) * 1000))
                        n += 1

            thread = threading.Thread(target=reader)
            thread.start()
            time.sleep(3.0)
            word = f"zephyrquartz{random.randrange(10**6)}"
            article = {
                "id": f"scale-write-{word}",
                "title": f"The {word} harbour opens",
                "body": f"The {word} harbour opened on Monday with three new berths for container ships. " * 4,
                "source": "bench",
            }
            question = {"question": f"When did the {word} harbour open?", "include_retrieved": True}
            written = time.perf_counter()
            headers = {"Authorization": f"Bearer {WRITE_KEY}"}
            with httpx.Client(timeout=120) as client:
                client.post(f"{one}/documents", json=article, headers=headers).raise_for_status()
                while time.perf_counter() - written < 120:
                    got = client.post(f"{two}/query", json=question).json()
                    if any(r["article_id"] == article["id"] for r in got.get("retrieved") or []):
                        visible = time.perf_counter() - written
                        break
                    time.sleep(0.05)
            time.sleep(1.0)
            stop.set()
            thread.join(timeout=130)
            replica_rss, chroma_rss = rss_mb(second.pid), rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    before = [ms for t, ms in latencies if t < written]
    during = [ms for t, ms in latencies if t >= written - 0.2 and (visible is None or t <= written + visible + 1)]
    return {
        "write_visible_s": None if visible is None else round(visible, 2),
        "max_query_ms_during_write": round(max(during), 1) if during else None,
        "max_query_ms_before_write": round(max(before), 1) if before else None,
        "replica_rss_mb": round(replica_rss),  # a replica of a Chroma server: what it holds itself
        "chroma_rss_mb": round(chroma_rss),  # the server: the HNSW index and its caches
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--source", type=Path, default=NEWS_QUIZ_INDEX)
    parser.add_argument("--sentences", type=int, default=6, help="sentences per synthetic chunk")
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--data-dir", type=Path, default=None, help="where the synthetic index grows (temp)")
    parser.add_argument("--json", action="store_true", help="one JSON line per size on stdout (progress on stderr)")
    parser.add_argument(
        "--no-writes", dest="writes", action="store_false", help="skip the two-replica write-visibility measurement"
    )
    parser.add_argument("--refresh", type=float, default=2.0, help="RAG_REFRESH_SECONDS of the two replicas")
    parser.add_argument("--reranker", default=None, help="RAG_RERANKER of the services (default: the service's)")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    pool = sentence_pool(args.source)
    log(f"cores: {os.cpu_count()}  source: {args.source} ({len(pool[0]):,} distinct sentences)")
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="newsrag-scale-"))
    # building 100k chunks on busy cores can take one upsert past the service's 10 s deadline
    store: ChromaStore = build_pipeline(
        Settings(data_dir=data_dir, ingest_on_start=False, store_timeout_seconds=600)
    ).store
    asked = questions(args.questions)
    rng = random.Random(20260613)
    rows: list[dict[str, float | int | str | None]] = []
    have = store.count_chunks()
    for size in sorted(args.sizes):
        started = time.perf_counter()
        while have < size:
            batch = min(100, -(-(size - have) // CHUNKS_PER_ARTICLE))
            first = have // CHUNKS_PER_ARTICLE
            store.write_articles(synthetic_articles(batch, first, pool, args.sentences, rng))
            have += batch * CHUNKS_PER_ARTICLE
        store.touch()
        log(f"  {have:,} chunks written in {time.perf_counter() - started:.0f} s")
        extra = {"RAG_RERANKER": args.reranker} if args.reranker else {}
        row: dict[str, float | int | str | None] = {**measure(data_dir, asked, have, extra)}
        if args.reranker:
            row["reranker"] = args.reranker
        if args.writes:
            row.update(measure_write(data_dir, asked, args.refresh, extra))
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            log(f"  {row}")
    if args.json:
        return
    print()
    print(
        "| chunks | start s | restart s | RSS after start MB | p50 ms | p95 ms "
        "| embed / dense / lexical / fuse / answer ms (p50) | RSS after queries MB | write visible s "
        "| slowest query during the write ms |"
    )
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['chunks']:,} | {r['start_s']} | {r['restart_s']} | {r['rss_mb']} | {r['p50_ms']} | {r['p95_ms']} "
            f"| {r['stages_p50_ms']} | {r['rss_after_queries_mb']} | {r.get('write_visible_s', '–')} "
            f"| {r.get('max_query_ms_during_write', '–')} |"
        )
    print(f"(/query over HTTP at concurrency 1, {len(asked)} questions; index at {data_dir})")


if __name__ == "__main__":
    main()
