"""Bounded soak on loopback: `python -m bench.soak [--seconds 60] [--concurrency 16] [--replicas 2 --data-dir D]`.

Starts `rag serve` (as shipped) on a free loopback port with a fresh index of the seeds, then
mixes questions and document writes from `--concurrency` workers for `--seconds`. Prints request
counts, latency percentiles, 5xx count, lost writes and the server's RSS over time; exits 1 if
any request got a 5xx or any acknowledged write is missing afterwards.

With `--replicas N` (2 or more), `chroma run` serves the index and N replicas share it, the workers spread over
them; `--data-dir` names an existing index to soak (bench.scale's, e.g. 100k chunks: its `chroma` folder) instead
of the seeds. Afterwards every replica must retrieve every acknowledged write (a question filtered to that
article) and report the same article and chunk counts on /health; a disagreement also exits 1.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

from bench.races import chroma_server
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
    urls: list[str], seconds: float, concurrency: int, write_share: float, pid: int
) -> tuple[dict, list[str], list[float]]:
    stats: dict = {}
    written: list[str] = []
    rss: list[float] = [rss_mb(pid)]
    limits = httpx.Limits(max_connections=concurrency)
    clients = [httpx.AsyncClient(base_url=url, timeout=60, limits=limits) for url in urls]
    try:
        stop_at = time.monotonic() + seconds

        async def sample() -> None:
            while time.monotonic() < stop_at:
                await asyncio.sleep(5)
                rss.append(rss_mb(pid))

        await asyncio.gather(
            sample(),
            *(worker(clients[n % len(clients)], n, stop_at, stats, written, write_share) for n in range(concurrency)),
        )
    finally:
        for client in clients:
            await client.aclose()
    return stats, written, rss


def agree(urls: list[str], written: list[str], settle_seconds: float) -> tuple[list[str], list[dict]]:
    """The acknowledged writes some replica does not retrieve (after waiting up to `settle_seconds` for them),
    and each replica's /health."""
    deadline = time.monotonic() + settle_seconds
    missing = list(written)
    with httpx.Client(timeout=60) as client:
        while True:
            missing = [a for a in written if any(not retrieves(client, url, a) for url in urls)]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        health = [client.get(f"{url}/health").json() for url in urls]
    return missing, health


def retrieves(client: httpx.Client, url: str, article_id: str) -> bool:
    question = {
        "question": "How many new homes did the council approve?",
        "filters": {"article_ids": [article_id]},
        "include_retrieved": True,
    }
    got = client.post(f"{url}/query", json=question)
    return got.status_code == 200 and any(r["article_id"] == article_id for r in got.json().get("retrieved") or [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--write-share", type=float, default=0.1)
    parser.add_argument("--replicas", type=int, default=1, help="2 or more: replicas sharing a `chroma run`")
    parser.add_argument("--data-dir", type=Path, default=None, help="an existing index (default: the seeds, fresh)")
    parser.add_argument("--refresh", type=float, default=2.0, help="RAG_REFRESH_SECONDS of the replicas")
    args = parser.parse_args()

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="newsrag-soak-"))
    env = {
        "RAG_API_KEYS": KEY,
        "RAG_RATE_LIMIT_PER_MINUTE": "0",
        "RAG_REFRESH_SECONDS": str(args.refresh),
        **({"RAG_INGEST_ON_START": "false"} if args.data_dir else {}),
    }
    with ExitStack() as stack:
        if args.replicas < 2:
            urls_pids = [stack.enter_context(running_service({**env, "RAG_DATA_DIR": str(data)}, timeout=1800))]
        else:
            if not args.data_dir:  # the seeds first, into the folder the server will serve
                with running_service({**env, "RAG_DATA_DIR": str(data)}, timeout=600):
                    pass
            proc, port = chroma_server(data / "chroma")
            stack.callback(lambda: (proc.terminate(), proc.wait(timeout=30)))
            shared = {**env, "RAG_CHROMA_HOST": "127.0.0.1", "RAG_CHROMA_PORT": str(port)}
            urls_pids = [
                stack.enter_context(
                    running_service({**shared, "RAG_DATA_DIR": str(data / f"replica-{n}")}, timeout=1800)
                )
                for n in range(1, args.replicas + 1)
            ]
        urls = [url for url, _ in urls_pids]
        stats, written, rss = asyncio.run(
            run(urls, args.seconds, args.concurrency, args.write_share, urls_pids[0][1].pid)
        )
        lost = [a for a in written if httpx.get(f"{urls[0]}/documents/{a}", timeout=30).status_code != 200]
        unseen, health = agree(urls, written, args.refresh + 10) if len(urls) > 1 else ([], [])

    errors_5xx = sum(n for code, n in stats.get("status", {}).items() if code >= 500)
    print(
        f"cores: {os.cpu_count()}  duration: {args.seconds:.0f} s  concurrency: {args.concurrency}  "
        f"replicas: {len(urls)}"
    )
    print("| kind | requests | per s | p50 ms | p95 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for kind in ("query", "write"):
        values = stats.get(kind, [])
        print(
            f"| {kind} | {len(values)} | {len(values) / args.seconds:.1f} | {pct(values, 0.5):.0f} | "
            f"{pct(values, 0.95):.0f} | {pct(values, 0.99):.0f} |"
        )
    print(f"status codes: {dict(sorted(stats.get('status', {}).items()))}")
    print(f"5xx: {errors_5xx}  acknowledged writes: {len(written)}  lost writes: {len(lost)}")
    counts = {(h.get("articles"), h.get("chunks")) for h in health}
    if health:
        print(
            f"replicas: {len(unseen)} writes not retrieved by every replica; "
            f"(articles, chunks) on /health: {sorted(counts)}"
        )
    print(f"first replica's RSS MB (every 5 s): {' '.join(f'{r:.0f}' for r in rss)}")
    return 1 if errors_5xx or lost or unseen or len(counts) > 1 else 0


if __name__ == "__main__":
    sys.exit(main())
