"""In-process query latency on news-quiz, ours beside the plain llama-index pipeline, in one run.

    python -m bench.query [--passes 5] [--baseline shipped|ours]

Ours is the whole `/query` path (hybrid retrieval, the cited answer) over the index that
`rag eval --news-quiz` caches (`eval/.cache/news-quiz/...`, built there if missing); the baseline
is `bench.plain` (`retriever.retrieve`, similarity_top_k=10) over its own index of the same
corpus, built once and cached beside it. Both answer the 64 dev questions, interleaved question
by question so that a slow spell of the machine hits both; the table gives p50/p95 and our
stage split (embed / dense / lexical / fuse / answer, p50 of each).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from pathlib import Path

from bench.plain import OursCounted, ShippedMiniLM, chunk_count, embed_model, plain_index
from rag.loading import load_file
from rag.pipeline import build_pipeline
from rag.settings import Settings

NEWS_QUIZ = Path("../shared/corpora/news-quiz")
CACHE = Path("eval/.cache/news-quiz")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--news-quiz", type=Path, default=NEWS_QUIZ)
    parser.add_argument("--index", type=Path, default=CACHE / "title-200-1-pooled", help="our index (data dir)")
    parser.add_argument("--baseline", choices=["shipped", "ours"], default="shipped")
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()

    with (args.news_quiz / "queries-dev.jsonl").open(encoding="utf-8") as handle:
        questions = [json.loads(line)["question"] for line in handle if line.strip()]
    articles = load_file(args.news_quiz / "corpus.jsonl")

    pipeline = build_pipeline(Settings(data_dir=args.index, ingest_on_start=False, refresh_seconds=3600))
    if pipeline.store.count_chunks() == 0 or pipeline.ingest_articles(articles).changed:
        print(f"(our index at {args.index} was built or completed now)")
    counted = ShippedMiniLM() if args.baseline == "shipped" else OursCounted()
    model = embed_model(counted)
    base_dir = CACHE / f"bench-baseline-256-{args.baseline}"
    done = base_dir / "complete"
    if not done.exists():
        shutil.rmtree(base_dir, ignore_errors=True)  # an interrupted build would leave duplicates
        base_dir.mkdir(parents=True)
    index = plain_index(articles, model, base_dir, build=not done.exists())
    done.write_text("built\n")
    retriever = index.as_retriever(similarity_top_k=10)

    for question in questions[:5]:  # warm-up: loads both in-memory indexes
        pipeline.ask(question)
        retriever.retrieve(question)
    ours: list[float] = []
    stages: dict[str, list[float]] = {}
    base: list[float] = []
    base_embed: list[float] = []
    for _ in range(args.passes):
        for question in questions:
            t = time.perf_counter()
            answer = pipeline.ask(question)
            ours.append((time.perf_counter() - t) * 1000)
            for stage, value in answer.timings_ms.items():
                stages.setdefault(stage, []).append(value)
            t = time.perf_counter()
            retriever.retrieve(question)
            base.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            model.get_query_embedding(question)
            base_embed.append((time.perf_counter() - t) * 1000)

    chunks = pipeline.store.count_chunks()
    print(f"cores: {os.cpu_count()}  news-quiz: {len(articles)} articles, {len(questions)} questions x {args.passes}")
    print("| pipeline | chunks | p50 ms | p95 ms | split (p50 ms) |")
    print("|---|---:|---:|---:|---|")
    split = ", ".join(
        f"{s} {statistics.median(stages[s]):.1f}" for s in ("embed", "dense", "lexical", "fuse", "answer")
    )
    print(f"| ours, whole /query path | {chunks:,} | {pct(ours, 0.5):.1f} | {pct(ours, 0.95):.1f} | {split} |")
    print(
        f"| llama-index retrieve ({args.baseline} model) | {chunk_count(index):,} | {pct(base, 0.5):.1f} | "
        f"{pct(base, 0.95):.1f} | query embedding {statistics.median(base_embed):.1f} |"
    )
    print(f"ours / baseline at p50: {pct(ours, 0.5) / pct(base, 0.5):.2f}  (target <= 0.5)")


if __name__ == "__main__":
    main()
