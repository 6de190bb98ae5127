"""What the cross-encoder costs: `python -m bench.rerank`.

1. In process, news-quiz: the whole `/query` path (`Pipeline.ask`) for the 64 dev questions with the
   default reranker beside `RAG_RERANKER=none`, interleaved question by question over the index that
   `rag eval --news-quiz` caches (built there if missing), `--passes` times. Prints p50/p95 of the whole
   path, p50 of the rerank stage and the cross-encoder tokens read per question.
2. Over HTTP, seeds: `rag serve` on a loopback port, closed-loop load at each `--concurrency` for
   `--seconds` (the 69 seed questions, bench.http_latency's client), once per setting in `--settings`
   (default: the reranker with 2 and 1 threads a question, and none).

Targets (issue 18): p50 <= 80 ms in process on news-quiz with the reranker on; >= 25 QPS at
concurrency 8 over HTTP on the seeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.http_latency import QUESTIONS as SEED_QUESTIONS
from bench.http_latency import load, pct
from bench.service import running_service
from eval.datasets import date_window, load_questions
from rag.loading import load_file
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

NEWS_QUIZ = Path("../shared/corpora/news-quiz")
INDEX = Path("eval/.cache/news-quiz/title-200-1-pooled")
SETTINGS = {
    "reranker, 2 threads": {"RAG_RERANKER": "minilm-l12", "RAG_RERANK_THREADS": "2"},
    "reranker, 1 thread": {"RAG_RERANKER": "minilm-l12", "RAG_RERANK_THREADS": "1"},
    "none": {"RAG_RERANKER": "none"},
}


def in_process(index: Path, news_quiz: Path, passes: int) -> None:
    questions = load_questions(news_quiz / "queries-dev.jsonl")
    base = Settings(data_dir=index, ingest_on_start=False, refresh_seconds=3600)
    pipelines: dict[str, Pipeline] = {
        "reranker (default)": build_pipeline(base),
        "RAG_RERANKER=none": build_pipeline(base.model_copy(update={"reranker": "none"})),
    }
    first = next(iter(pipelines.values()))
    if first.store.count_chunks() == 0:
        first.ingest_articles(load_file(news_quiz / "corpus.jsonl"))
    totals: dict[str, list[float]] = {name: [] for name in pipelines}
    reranks: dict[str, list[float]] = {name: [] for name in pipelines}
    tokens: list[int] = []
    for pipeline in pipelines.values():  # warm-up: loads the snapshot, first model runs
        for q in questions[:5]:
            pipeline.ask(q.question, filters=date_window(q.question_date, None, 7))
    for _ in range(passes):
        for q in questions:
            filters = date_window(q.question_date, None, 7)
            for name, pipeline in pipelines.items():
                started = time.perf_counter()
                answer = pipeline.ask(q.question, filters=filters)
                totals[name].append((time.perf_counter() - started) * 1000)
                reranks[name].append(answer.timings_ms["rerank"])
    ranker = pipelines["reranker (default)"].ranker
    for q in questions:
        retrieval = first.retriever.retrieve(q.question, 10, date_window(q.question_date, None, 7))
        tokens.append(
            ranker.rank(retrieval.question, retrieval.question_vector, retrieval.hits, retrieval.snapshot).tokens
        )
    print(f"in process, news-quiz: {len(questions)} questions x {passes}, {first.store.count_chunks():,} chunks")
    print("| setting | p50 ms | p95 ms | rerank p50 ms |")
    print("|---|---:|---:|---:|")
    for name in pipelines:
        print(
            f"| {name} | {pct(totals[name], 0.5):.1f} | {pct(totals[name], 0.95):.1f} | "
            f"{statistics.median(reranks[name]):.1f} |"
        )
    print(f"cross-encoder tokens a question: median {statistics.median(tokens):.0f}, max {max(tokens)}")


def over_http(settings: list[str], concurrency: list[int], seconds: float) -> None:
    data_dir = tempfile.mkdtemp(prefix="newsrag-rerank-")
    print(f"\nover HTTP, seeds: {seconds:.0f} s per level")
    print("| setting | concurrency | requests | QPS | p50 ms | p95 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in settings:
        env = {"RAG_DATA_DIR": data_dir, **SETTINGS[name]}
        with running_service(env, timeout=600) as (url, _):
            for question in SEED_QUESTIONS[:10]:  # warm-up
                httpx.post(f"{url}/query", json={"question": question}, timeout=30)
            for level in concurrency:
                latencies, errors = asyncio.run(load(url, level, seconds))
                print(
                    f"| {name} | {level} | {len(latencies)} | {len(latencies) / seconds:.0f} | "
                    f"{pct(latencies, 0.5):.1f} | {pct(latencies, 0.95):.1f} | {errors} |"
                )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news-quiz", type=Path, default=NEWS_QUIZ)
    parser.add_argument("--index", type=Path, default=INDEX, help="the news-quiz index (data dir)")
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--skip", choices=["in-process", "http"], default=None)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  load average: {json.dumps(os.getloadavg())}")
    if args.skip != "in-process":
        in_process(args.index, args.news_quiz, args.passes)
    if args.skip != "http":
        over_http(args.settings, args.concurrency, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
