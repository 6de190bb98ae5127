"""One rate limit across replicas: with RAG_RATE_LIMIT_STORAGE=redis://… two replicas share a key's counter
(a real `redis-server` on loopback; CI installs Debian's); without it each replica counts its own."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from api.main import create_app
from bench.service import free_port, serving_in_thread
from rag.pipeline import Pipeline
from tests.conftest import make_settings

KEY = "test-rate-limit-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
PER_MINUTE = 6


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server; .ci/run does)")
    port = free_port()
    argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen([*argv, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def replicas(stack: ExitStack, pipeline: Pipeline, tmp_path: Path, storage: str) -> list[str]:
    """Two services on loopback over one index, as two replicas of one deployment."""
    settings = make_settings(
        tmp_path,
        api_keys=KEY,
        require_key_for_read=True,
        rate_limit_per_minute=PER_MINUTE,
        rate_limit_storage=storage,
    )
    return [stack.enter_context(serving_in_thread(create_app(settings, pipeline))) for _ in range(2)]


def statuses(urls: list[str], count: int) -> list[httpx.Response]:
    """`count` keyed reads, alternating between the replicas."""
    return [httpx.get(f"{urls[n % 2]}/documents", headers=AUTH, timeout=10) for n in range(count)]


def test_replicas_sharing_redis_share_one_limit(pipeline: Pipeline, tmp_path: Path, redis_url: str) -> None:
    with ExitStack() as stack:
        urls = replicas(stack, pipeline, tmp_path, redis_url)
        answers = statuses(urls, 2 * PER_MINUTE)
    codes = [a.status_code for a in answers]
    assert codes == [200] * PER_MINUTE + [429] * PER_MINUTE, codes
    assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
    assert "rate limit exceeded" in answers[-1].json()["detail"]


def test_without_redis_each_replica_counts_its_own(pipeline: Pipeline, tmp_path: Path) -> None:
    with ExitStack() as stack:
        urls = replicas(stack, pipeline, tmp_path, "memory://")
        codes = [a.status_code for a in statuses(urls, 2 * PER_MINUTE + 2)]
    assert codes[: 2 * PER_MINUTE] == [200] * (2 * PER_MINUTE) and codes[2 * PER_MINUTE :] == [429, 429], codes


def test_redis_down_lets_requests_through_at_once(pipeline: Pipeline, tmp_path: Path) -> None:
    with ExitStack() as stack:
        urls = replicas(stack, pipeline, tmp_path, f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        started = time.monotonic()
        codes = [a.status_code for a in statuses(urls, 4)]
    assert codes == [200] * 4 and time.monotonic() - started < 5


def test_a_storage_that_is_not_memory_or_redis_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rate_limit_storage"):
        make_settings(tmp_path, rate_limit_storage="mongodb://db")
