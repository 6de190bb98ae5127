"""Seeds ingestion time and single-query latency, in process: `python -m bench.quick`.

Prints the median of several runs (each ingest into a fresh temporary index) and the machine's
core count. Numbers vary with machine load: compare runs taken on the same machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from rag.pipeline import build_pipeline
from rag.settings import Settings

QUESTIONS = [
    "What did Putin say about China's 12-point plan?",
    "What did Xi say about sanctions?",
    "How much gas will the Power of Siberia 2 pipeline deliver?",
    "Where did Xi and Putin meet in September 2022?",
    "Who won the 2018 World Cup?",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=Path, default=Path("seeds"))
    parser.add_argument("--ingest-runs", type=int, default=3)
    parser.add_argument("--query-runs", type=int, default=20, help="passes over the question list")
    args = parser.parse_args()

    ingest_s, reingest_s = [], []
    pipeline = None
    for _ in range(args.ingest_runs):
        tmp = tempfile.mkdtemp(prefix="newsrag-bench-")
        pipeline = build_pipeline(Settings(data_dir=Path(tmp), refresh_seconds=60))
        t = time.perf_counter()
        report = pipeline.ingest([args.seeds])
        ingest_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        pipeline.ingest([args.seeds])
        reingest_s.append(time.perf_counter() - t)
    assert pipeline is not None
    pipeline.ask(QUESTIONS[0])  # warm-up: loads the in-memory index
    query_ms = []
    for _ in range(args.query_runs):
        for question in QUESTIONS:
            t = time.perf_counter()
            pipeline.ask(question)
            query_ms.append((time.perf_counter() - t) * 1000)
    query_ms.sort()
    print(f"cores: {os.cpu_count()}")
    print(f"seeds: {report.articles} articles, {report.chunks} chunks, {report.embedded_tokens} passage tokens")
    print(f"ingest (cold)      median {statistics.median(ingest_s):.2f} s  over {len(ingest_s)} runs")
    print(f"re-ingest (same)   median {statistics.median(reingest_s) * 1000:.0f} ms")
    print(
        f"query (in process) median {statistics.median(query_ms):.1f} ms  "
        f"p95 {query_ms[int(0.95 * (len(query_ms) - 1))]:.1f} ms  over {len(query_ms)} queries"
    )


if __name__ == "__main__":
    main()
