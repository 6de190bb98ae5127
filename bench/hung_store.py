"""A Chroma server that stops answering: `python -m bench.hung_store [--hang-seconds 20]`.

Starts `chroma run` and `rag serve` against it on loopback (the seeds ingested), then stops the Chroma server
with SIGSTOP for `--hang-seconds` while `--readers` threads ask questions, one thread writes an article a
second, and a prober reads `/health` and `/metrics` every 0.2 s. Then SIGCONT, and it waits for `/health` to
say ready. Every request has a client timeout of `--hang-seconds` + 30 s, so a hang shows as such.

Prints one JSON line: the slowest query, write, /health and /metrics while the store hung, the statuses each
got, whether /health said `unavailable`, and how long after SIGCONT the service was ready again. Exits 1 if
any request outlived RAG_STORE_TIMEOUT_SECONDS by more than `--slack` seconds, /metrics ever took over a
second, /health never said unavailable, or the service did not come back.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from bench.races import chroma_server
from bench.service import running_service

KEY = "bench-hung-store-key"
QUESTIONS = [
    "What did Putin say about China's 12-point plan?",
    "How much gas would the Power of Siberia 2 pipeline deliver each year?",
    "Who did Xi meet in Moscow?",
]


@dataclass
class HangResult:
    hang_seconds: float
    store_timeout_seconds: float
    slowest_s: dict[str, float] = field(default_factory=dict)  # route -> slowest answer while the store hung
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)  # route -> status -> count
    health_said_unavailable: bool = False
    unavailable_detail: str = ""
    ready_again_s: float | None = None  # after SIGCONT
    hung_requests: int = 0  # requests that outlived the client timeout


def run(hang_seconds: float, readers: int, store_timeout: float) -> HangResult:
    """The whole recipe; the Chroma server and the service live only inside it."""
    result = HangResult(hang_seconds, store_timeout)
    slowest: dict[str, float] = {}
    statuses: dict[str, Counter[int]] = {}
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {KEY}"}
    with tempfile.TemporaryDirectory(prefix="newsrag-hang-") as tmp:
        chroma, port = chroma_server(Path(tmp) / "chroma")
        env = {
            "RAG_DATA_DIR": str(Path(tmp) / "data"),
            "RAG_CHROMA_HOST": "127.0.0.1",
            "RAG_CHROMA_PORT": str(port),
            "RAG_API_KEYS": KEY,
            "RAG_RATE_LIMIT_PER_MINUTE": "0",
            "RAG_REFRESH_SECONDS": "1",
            "RAG_STORE_TIMEOUT_SECONDS": str(store_timeout),
        }
        try:
            with running_service(env) as (url, _):
                hanging = threading.Event()
                stop = threading.Event()

                def record(route: str, call: Callable[[], httpx.Response]) -> None:
                    during = hanging.is_set()  # a request counts if the store hung at its start or at its end
                    started = time.perf_counter()
                    try:
                        status = call().status_code
                    except httpx.TimeoutException:
                        status = 0
                        with lock:
                            result.hung_requests += 1
                    took = time.perf_counter() - started
                    if during or hanging.is_set():
                        with lock:
                            slowest[route] = max(slowest.get(route, 0.0), took)
                            statuses.setdefault(route, Counter())[status] += 1

                client_timeout = hang_seconds + 30

                def reader(n: int) -> None:
                    with httpx.Client(base_url=url, timeout=client_timeout, headers=headers) as http:
                        while not stop.is_set():
                            question = {"question": QUESTIONS[n % len(QUESTIONS)]}
                            record("/query", lambda q=question: http.post("/query", json=q))

                def writer() -> None:
                    with httpx.Client(base_url=url, timeout=client_timeout, headers=headers) as http:
                        n = 0
                        while not stop.wait(1.0):
                            n += 1
                            body = {"id": f"hang-{n}", "title": f"Note {n}", "body": f"A short note number {n}. " * 20}
                            record("/documents", lambda b=body: http.post("/documents", json=b))

                def prober() -> None:
                    with httpx.Client(base_url=url, timeout=client_timeout) as http:
                        while not stop.wait(0.2):
                            during = hanging.is_set()
                            started = time.perf_counter()
                            try:
                                health = http.get("/health")
                            except httpx.TimeoutException:
                                continue
                            took = time.perf_counter() - started
                            if during or hanging.is_set():
                                with lock:
                                    slowest["/health"] = max(slowest.get("/health", 0.0), took)
                                    statuses.setdefault("/health", Counter())[health.status_code] += 1
                                    if health.json().get("status") == "unavailable":
                                        result.health_said_unavailable = True
                                        result.unavailable_detail = health.json().get("detail", "")
                            record("/metrics", lambda: http.get("/metrics"))

                threads = [threading.Thread(target=reader, args=(n,)) for n in range(readers)]
                threads += [threading.Thread(target=writer), threading.Thread(target=prober)]
                for t in threads:
                    t.start()
                time.sleep(2.0)
                os.kill(chroma.pid, signal.SIGSTOP)
                hanging.set()
                time.sleep(hang_seconds)
                hanging.clear()
                os.kill(chroma.pid, signal.SIGCONT)
                resumed = time.perf_counter()
                with httpx.Client(base_url=url, timeout=5) as http:
                    while time.perf_counter() - resumed < 60:
                        try:
                            if http.get("/health").status_code == 200:
                                result.ready_again_s = round(time.perf_counter() - resumed, 2)
                                break
                        except httpx.HTTPError:
                            pass
                        time.sleep(0.1)
                stop.set()
                for t in threads:
                    t.join(timeout=client_timeout + 5)
        finally:
            os.kill(chroma.pid, signal.SIGCONT)
            chroma.terminate()
            chroma.wait(timeout=30)
    result.slowest_s = {k: round(v, 2) for k, v in slowest.items()}
    result.statuses = {k: {str(s): n for s, n in sorted(v.items())} for k, v in statuses.items()}
    return result


def failures(result: HangResult, slack: float) -> list[str]:
    """What went wrong, in words (empty: it held)."""
    out = []
    limit = result.store_timeout_seconds + slack
    for route, took in result.slowest_s.items():
        if route != "/metrics" and took > limit:
            out.append(f"{route} took {took} s while the store hung (deadline {result.store_timeout_seconds} s)")
    if result.slowest_s.get("/metrics", 0.0) > 1.0:
        out.append(f"/metrics took {result.slowest_s['/metrics']} s")
    if result.hung_requests:
        out.append(f"{result.hung_requests} requests hung")
    if not result.health_said_unavailable:
        out.append("/health never said unavailable")
    if result.ready_again_s is None:
        out.append("the service was not ready again within 60 s of SIGCONT")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hang-seconds", type=float, default=20.0)
    parser.add_argument("--readers", type=int, default=16, help="threads asking questions throughout")
    parser.add_argument("--store-timeout", type=float, default=5.0, help="RAG_STORE_TIMEOUT_SECONDS")
    parser.add_argument("--slack", type=float, default=2.0, help="seconds past the deadline a request may take")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.hang_seconds, args.readers, args.store_timeout)
    problems = failures(result, args.slack)
    print(json.dumps({**asdict(result), "problems": problems, "seconds": round(time.perf_counter() - started, 1)}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
