"""Running the service as a separate process on loopback, for benchmarks and end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def wait_healthy(url: str, timeout: float = 120, process: subprocess.Popen | None = None) -> None:  # type: ignore[type-arg]
    """Block until GET {url}/health answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service exited with code {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not become ready within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def running_service(
    env: dict[str, str], command: list[str] | None = None, log: IO[str] | None = None, timeout: float = 120
) -> Iterator[tuple[str, subprocess.Popen]]:  # type: ignore[type-arg]
    """`rag serve` (or `command`, which must take --port) on a free loopback port, ready to use."""
    port = free_port()
    argv = command or [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if command:
        argv = [*command]
        argv[argv.index("--port") + 1] = str(port)
    process = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, timeout, process)
        yield url, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def serving_in_thread(app: Any, timeout: float = 60) -> Iterator[str]:
    """An ASGI app under uvicorn in a thread of this process, on a free loopback port, ready."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.config.port}"
    try:
        wait_healthy(url, timeout)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
