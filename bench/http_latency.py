"""/query latency through HTTP, uvicorn as shipped: `python -m bench.http_latency`.

Starts `rag serve` on a loopback port over an index (the seeds by default, or --data-dir of an
existing index), then for each concurrency level runs a closed-loop load for --seconds and
prints p50/p95/p99, QPS and errors. The questions are the 69 seed evaluation questions (12 of them
unanswerable), each connection starting at a different one. Bounded in time; loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.service import rss_mb, running_service

SEED_QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions" / "seeds.jsonl"
with SEED_QUESTIONS.open(encoding="utf-8") as _handle:
    QUESTIONS = [json.loads(line)["question"] for line in _handle if line.strip()]


async def load(url: str, concurrency: int, seconds: float) -> tuple[list[float], int]:
    """Closed-loop load: `concurrency` keep-alive connections, each sending its next question as
    soon as the previous answer arrived, for `seconds`. A bare HTTP/1.1 client on asyncio streams,
    so that the load generator takes little of the CPU it shares with the server."""
    host, port = url.removeprefix("http://").split(":")
    requests = []
    for question in QUESTIONS:
        body = json.dumps({"question": question}).encode()
        head = f"POST /query HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        requests.append(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        i = n
        try:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                try:
                    writer.write(requests[i % len(requests)])
                    status_line = await reader.readline()
                    length = 0
                    while (line := await reader.readline()) not in (b"\r\n", b""):
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    await reader.readexactly(length)
                    ok = status_line.split(b" ")[1:2] == [b"200"]
                except (OSError, asyncio.IncompleteReadError, IndexError, ValueError):
                    ok = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not ok
                i += 1
                if not ok:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, int(port))
        finally:
            writer.close()

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
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
        for question in QUESTIONS[:10]:  # warm-up
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
