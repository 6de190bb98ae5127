"""Ingestion throughput and memory, ours beside a plain llama-index pipeline, in one run.

    python -m bench.ingest [--corpus PATH] [--limit N] [--runs R] [--baseline shipped,ours,none]
                           [--embedders minilm,minilm-int8,bge-small]

Each pipeline ingests the same articles into a fresh temporary Chroma index, in its own child
process (so peak RSS is that pipeline's alone), `--runs` times; the table shows medians. Ours is
then re-ingested unchanged (which must be skipped). `--embedders` runs ours once per RAG_EMBEDDER
value, in the same interleaved rounds (default: one row with the environment's settings). Figures:

- corpus tokens/s: tokens of the articles' text (the same numerator for every pipeline) per
  second of the whole ingest: how fast a corpus gets in;
- submitted tokens/s: tokens of the texts each pipeline hands its embedding model, untruncated
  (how the issue counts "embedded tokens"; overlapping chunks count their overlap again, and the
  shipped model never sees what lies past its 128-token truncation);
- model tokens/s: non-padding tokens the model actually ran over;
- articles/s and chunks/s over the same wall time, and peak RSS of the child process.

The baseline is `bench.plain`: what a first llama-index prototype does, with the int8 MiniLM as
shipped (`shipped`) or through our embedder (`ours`). Its Chroma client is opened inside its
clock, so ours is too. Run it alone: other work on the machine skews every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.embedding import ONNX_MODELS
from rag.loading import load_file
from rag.models import Article


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_articles(corpus: Path, limit: int) -> list[Article]:
    files = sorted(corpus.iterdir()) if corpus.is_dir() else [corpus]
    articles = [a for f in files for a in load_file(f)]
    return articles[:limit] if limit else articles


def run_ours(articles: list[Article], embedder: str = "") -> dict[str, Any]:
    from rag.pipeline import build_pipeline
    from rag.settings import Settings

    chosen: dict[str, Any] = {"embedder": embedder} if embedder else {}
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="newsrag-ingest-")), refresh_seconds=3600, **chosen)
    pipeline = build_pipeline(settings)
    if embedder in ONNX_MODELS and pipeline.embedder.name != ONNX_MODELS[embedder].name:
        raise SystemExit(
            f"RAG_EMBEDDER={embedder} built {pipeline.embedder.name!r}, not {ONNX_MODELS[embedder].name!r}: "
            "rag.pipeline does not build the embedder rag.embedding.build_embedder names"
        )
    started = time.perf_counter()
    report = pipeline.ingest_articles(articles)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    again = pipeline.ingest_articles(articles)
    warm = time.perf_counter() - started
    assert again.chunks == 0, "unchanged content was embedded again"
    return {
        "seconds": cold,
        "articles": report.articles,
        "chunks": report.chunks,
        "tokens": report.embedded_tokens,
        "model_tokens": report.embedded_tokens,  # chunks are sized to fit the model: nothing is truncated
        "reingest_seconds": warm,
        "peak_rss_mb": peak_rss_mb(),
        "model": pipeline.embedder.name,  # the name the index records: shows which model the row really ran
    }


def run_baseline(articles: list[Article], embedder: str) -> dict[str, Any]:
    from bench.plain import OursCounted, ShippedMiniLM, chunk_count, embed_model, plain_index

    counted = ShippedMiniLM() if embedder == "shipped" else OursCounted()
    model = embed_model(counted)
    path = Path(tempfile.mkdtemp(prefix="newsrag-baseline-"))
    started = time.perf_counter()
    index = plain_index(articles, model, path)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "articles": len(articles),
        "chunks": chunk_count(index),
        "tokens": counted.tokens,
        "model_tokens": counted.model_tokens,
        "reingest_seconds": None,
        "peak_rss_mb": peak_rss_mb(),
    }


def child(args: argparse.Namespace) -> None:
    articles = load_articles(args.corpus, args.limit)
    kind, _, variant = args.child.partition(":")
    result = run_ours(articles, variant) if kind == "ours" else run_baseline(articles, variant)
    from rag.embedding import OnnxEmbedder

    result["corpus_tokens"] = sum(OnnxEmbedder(pool_sentences=False).count_tokens([a.text for a in articles]))
    print("RESULT " + json.dumps(result))


def measure(args: argparse.Namespace, which: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.ingest", "--child", which, "--corpus", str(args.corpus)]
    command += ["--limit", str(args.limit)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{which} failed:\n{done.stderr[-2000:]}")
    out = done.stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N articles (0 = all)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", default="shipped", help="comma list of shipped, ours, none")
    parser.add_argument("--embedders", default="", help="comma list of RAG_EMBEDDER values, one row of ours each")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    ours = [f"ours:{e}" for e in args.embedders.split(",") if e] or ["ours"]
    rows = ours + [f"baseline:{b}" for b in args.baseline.split(",") if b and b != "none"]
    results: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}
    for _ in range(args.runs):
        for row in rows:  # interleaved, so a slow spell of the machine hits every pipeline
            results[row].append(measure(args, row))

    def median(row: str, key: str) -> float:
        return statistics.median(r[key] for r in results[row])

    names = {
        **{row: f"ours, RAG_EMBEDDER={row[5:]} ({results[row][0]['model']})" for row in ours if row != "ours"},
        "ours": f"ours ({results['ours'][0]['model']})" if "ours" in results else "ours",
        "baseline:shipped": "llama-index, model as shipped",
        "baseline:ours": "llama-index, our embedder",
    }
    print(
        f"cores: {os.cpu_count()}  corpus: {args.corpus}  articles: {results[rows[0]][0]['articles']}  "
        f"runs: {args.runs}"
    )
    print(
        "| pipeline | chunks | seconds | articles/s | chunks/s | corpus tokens/s | submitted tokens/s "
        "| model tokens/s | peak RSS MB | unchanged re-ingest s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        seconds = median(row, "seconds")
        first = results[row][0]
        reingest = "" if results[row][0]["reingest_seconds"] is None else f"{median(row, 'reingest_seconds'):.2f}"
        print(
            f"| {names[row]} | {first['chunks']} | {seconds:.1f} | {first['articles'] / seconds:.2f} | "
            f"{first['chunks'] / seconds:.1f} | {first['corpus_tokens'] / seconds:.0f} | "
            f"{first['tokens'] / seconds:.0f} | {first['model_tokens'] / seconds:.0f} | "
            f"{median(row, 'peak_rss_mb'):.0f} | {reingest} |"
        )
    for mine in ours:
        for row in (r for r in rows if r != mine):
            wall = median(row, "seconds") / median(mine, "seconds")
            submitted = (results[mine][0]["tokens"] / median(mine, "seconds")) / (
                results[row][0]["tokens"] / median(row, "seconds")
            )
            print(f"{names[mine]} vs {names[row]}: corpus tokens/s x{wall:.2f}, submitted tokens/s x{submitted:.2f}")


if __name__ == "__main__":
    main()
