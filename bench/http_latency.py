"""/query latency through HTTP, uvicorn as shipped: `python -m bench.http_latency`.

Starts `rag serve` on a loopback port over an index (the seeds by default, or --data-dir of an
existing index), then for each concurrency level runs a closed-loop load for --seconds and
prints p50/p95/p99, QPS and errors. Bounded in time and count; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

import httpx

from bench.service import rss_mb, running_service

QUESTIONS = [
    "What did Putin say about China's 12-point plan?",
    "What did Xi say about sanctions?",
    "How much gas will the Power of Siberia 2 pipeline deliver?",
    "Where did Xi and Putin meet in September 2022?",
    "What did the US State Department say about China's alignment with Russia?",
    "Who won the 2018 World Cup?",
]


async def load(url: str, concurrency: int, seconds: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def worker(n: int, client: httpx.AsyncClient) -> None:
        nonlocal errors
        i = n
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                response = await client.post("/query", json={"question": QUESTIONS[i % len(QUESTIONS)]})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - started) * 1000)
            errors += not ok
            i += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(n, client) for n in range(concurrency)))
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--data-dir", default=None, help="an existing index (default: fresh, seeds)")
    args = parser.parse_args()

    env = {"RAG_DATA_DIR": args.data_dir or tempfile.mkdtemp(prefix="newsrag-http-")}
    with running_service(env, timeout=600) as (url, server):
        for question in QUESTIONS:  # warm-up
            httpx.post(f"{url}/query", json={"question": question}, timeout=30)
        rss_start = rss_mb(server.pid)
        print(f"cores: {os.cpu_count()}  {args.seconds:.0f} s per level  server RSS after start: {rss_start:.0f} MB")
        print("| concurrency | requests | QPS | p50 ms | p95 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|---|")
        for level in args.concurrency:
            latencies, errors = asyncio.run(load(url, level, args.seconds))
            print(
                f"| {level} | {len(latencies)} | {len(latencies) / args.seconds:.0f} | {pct(latencies, 0.5):.1f} | "
                f"{pct(latencies, 0.95):.1f} | {pct(latencies, 0.99):.1f} | {errors} |"
            )
        print(f"server RSS after the run: {rss_mb(server.pid):.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
