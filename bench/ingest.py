"""Ingestion throughput and memory: `python -m bench.ingest [--corpus PATH] [--limit N]`.

Ingests into a fresh temporary embedded index (cold), then again (unchanged content, which must
be skipped), and prints articles/s, chunks/s, embedded tokens/s (passage tokens; sentences are
embedded too and counted separately) and the process's peak RSS. Run it alone: other work on
the machine skews every figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from rag.loading import load_file
from rag.pipeline import build_pipeline
from rag.settings import Settings


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=Path("seeds"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N articles (0 = all)")
    parser.add_argument("--batch-tokens", type=int, default=None, help="RAG_EMBED_BATCH_TOKENS override")
    args = parser.parse_args()

    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="newsrag-ingest-")), refresh_seconds=3600)
    if args.batch_tokens:
        settings = settings.model_copy(update={"embed_batch_tokens": args.batch_tokens})
    pipeline = build_pipeline(settings)
    files = sorted(args.corpus.iterdir()) if args.corpus.is_dir() else [args.corpus]
    articles = [a for f in files for a in load_file(f)]
    if args.limit:
        articles = articles[: args.limit]
    sentences = 0
    started = time.perf_counter()
    report = pipeline.ingest_articles(articles)
    cold = time.perf_counter() - started
    for article in articles:
        sentences += sum(len(c.sentences) for c in pipeline.indexer.chunker.split(article))
    started = time.perf_counter()
    again = pipeline.ingest_articles(articles)
    warm = time.perf_counter() - started
    print(f"cores: {os.cpu_count()}  corpus: {args.corpus}  embed batch tokens: {settings.embed_batch_tokens}")
    print("| run | articles | chunks | seconds | articles/s | chunks/s | passage tokens/s | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| cold | {report.articles} | {report.chunks} | {cold:.1f} | {report.articles / cold:.1f} | "
        f"{report.chunks / cold:.1f} | {report.embedded_tokens / cold:.0f} | {peak_rss_mb():.0f} |"
    )
    print(f"| unchanged re-ingest | {again.articles} | {again.chunks} | {warm:.2f} | | | | {peak_rss_mb():.0f} |")
    print(f"sentences embedded besides passages: {sentences}")


if __name__ == "__main__":
    main()
