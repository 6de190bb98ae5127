"""Bounded soak on loopback: `python -m bench.soak [--seconds 60] [--concurrency 16]`.

Starts `rag serve` (as shipped) on a free loopback port with a fresh index of the seeds, then
mixes questions and document writes from `--concurrency` workers for `--seconds`. Prints request
counts, latency percentiles, 5xx count, lost writes and the server's RSS over time; exits 1 if
any request got a 5xx or any acknowledged write is missing afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time

import httpx

from bench.service import rss_mb, running_service

QUESTIONS = [
    "What did Putin say about China's 12-point plan?",
    "What did Xi say about sanctions?",
    "How much gas will the Power of Siberia 2 pipeline deliver?",
    "Who won the 2018 World Cup?",
    "What did the White House say about China's position?",
]
KEY = "soak-key-0123456789"


async def worker(
    client: httpx.AsyncClient, n: int, stop_at: float, stats: dict, written: list[str], write_share: float
) -> None:
    rng = random.Random(n)
    i = 0
    while time.monotonic() < stop_at:
        i += 1
        started = time.perf_counter()
        if rng.random() < write_share:
            article_id = f"soak-{n}-{i}"
            body = {
                "id": article_id,
                "title": f"Soak story {n}-{i}",
                "body": f"Worker {n} filed story {i}. The council approved {rng.randint(1, 999)} new homes on Monday.",
            }
            response = await client.post("/documents", json=body, headers={"X-API-Key": KEY})
            kind = "write"
            if response.status_code == 200:
                written.append(article_id)
        else:
            response = await client.post("/query", json={"question": rng.choice(QUESTIONS)})
            kind = "query"
        stats.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        stats.setdefault("status", {}).setdefault(response.status_code, 0)
        stats["status"][response.status_code] += 1


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1)))] if values else float("nan")


async def run(
    url: str, seconds: float, concurrency: int, write_share: float, pid: int
) -> tuple[dict, list[str], list[float]]:
    stats: dict = {}
    written: list[str] = []
    rss: list[float] = [rss_mb(pid)]
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        stop_at = time.monotonic() + seconds

        async def sample() -> None:
            while time.monotonic() < stop_at:
                await asyncio.sleep(5)
                rss.append(rss_mb(pid))

        await asyncio.gather(
            sample(), *(worker(client, n, stop_at, stats, written, write_share) for n in range(concurrency))
        )
    return stats, written, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--write-share", type=float, default=0.1)
    args = parser.parse_args()

    data = tempfile.mkdtemp(prefix="newsrag-soak-")
    env = {"RAG_DATA_DIR": data, "RAG_API_KEYS": KEY, "RAG_RATE_LIMIT_PER_MINUTE": "0"}
    with running_service(env) as (url, server):
        stats, written, rss = asyncio.run(run(url, args.seconds, args.concurrency, args.write_share, server.pid))
        missing = [a for a in written if httpx.get(f"{url}/documents/{a}", timeout=30).status_code != 200]

    errors_5xx = sum(n for code, n in stats.get("status", {}).items() if code >= 500)
    print(f"cores: {os.cpu_count()}  duration: {args.seconds:.0f} s  concurrency: {args.concurrency}")
    print("| kind | requests | per s | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for kind in ("query", "write"):
        values = stats.get(kind, [])
        print(
            f"| {kind} | {len(values)} | {len(values) / args.seconds:.1f} | {pct(values, 0.5):.0f} | "
            f"{pct(values, 0.95):.0f} | {pct(values, 0.99):.0f} |"
        )
    print(f"status codes: {dict(sorted(stats.get('status', {}).items()))}")
    print(f"5xx: {errors_5xx}  acknowledged writes: {len(written)}  lost writes: {len(missing)}")
    print(f"server RSS MB (every 5 s): {' '.join(f'{r:.0f}' for r in rss)}")
    return 1 if errors_5xx or missing else 0


if __name__ == "__main__":
    sys.exit(main())
