"""A full disk under `rag serve`: `python -m bench.full_disk [--size-mb 48] [--min-free-mb 0]`.

Mounts a small tmpfs (root only: `mount -t tmpfs`), or uses `--dir` (a small file system you made), and runs
`rag serve` with RAG_DATA_DIR on it. A filler file leaves `--headroom-mb` free; then each request POSTs 4
articles until one is refused, and a few more after that. Meanwhile and after, it checks that `/query`,
`/metrics` and `GET /documents` answer. Then it deletes the filler and POSTs again: writes must work without a
restart. Last, every article a 200 acknowledged must be stored whole, and (after an upkeep pass) no passage
row may be left without its article.

With `--min-free-mb 0` nothing is refused early: Chroma itself meets the full disk (its compaction fails),
which is the case that used to freeze the process. Prints one JSON line; exits 1 on any hang, 5xx other than
507, lost acknowledged article, or orphaned rows.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

import httpx

from bench.service import running_service

KEY = "bench-full-disk-key"
SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@dataclass
class DiskResult:
    acknowledged: int = 0  # articles a 200 said were stored
    refused_status: list[int] = field(default_factory=list)  # statuses of the refused writes, in order
    first_refusal: str = ""
    slowest_write_s: float = 0.0
    reads_while_full: dict[str, int] = field(default_factory=dict)  # route -> status
    slowest_read_s: float = 0.0
    write_after_freeing: int = 0  # status of the first write after the filler went
    missing_acknowledged: int = 0  # acknowledged articles not stored whole at the end
    orphan_rows: int = 0  # passage rows whose article has no record, after upkeep
    orphans_of: list[str] = field(default_factory=list)  # the articles those rows belong to
    hung: bool = False


def sentences() -> list[str]:
    """Real sentences from the seed articles, to make articles of."""
    out: list[str] = []
    for path in sorted(SEEDS.glob("*.txt")):
        out.extend(s.strip() + "." for s in path.read_text().split(". ") if len(s.split()) > 6)
    return out


def articles(start: int, count: int, pool: list[str], rng: random.Random) -> list[dict[str, str]]:
    return [
        {
            "id": f"disk-{n}",
            "title": f"Disk test article {n}",
            "body": " ".join(rng.sample(pool, min(40, len(pool)))),
            "source": "bench",
        }
        for n in range(start, start + count)
    ]


@contextmanager
def small_disk(size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` (root only); RuntimeError where mounting is not allowed."""
    path = Path(tempfile.mkdtemp(prefix="newsrag-disk-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        path.rmdir()
        raise RuntimeError(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        path.rmdir()


def fill(path: Path, headroom_mb: float) -> Path:
    """A filler file leaving about `headroom_mb` free on `path`'s file system."""
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    filler = path / "filler"
    with filler.open("wb") as out:
        left = max(int(free - headroom_mb * 2**20), 0)
        while left > 0:
            step = min(left, 2**20)
            out.write(b"\0" * step)
            left -= step
    return filler


def run(
    disk: Path,
    min_free_mb: float,
    headroom_mb: float,
    after: int = 3,
    timeout: float = 30.0,
    log: IO[str] | None = None,
) -> DiskResult:
    """The whole recipe on the file system at `disk`; the service's log goes to `log`."""
    result = DiskResult()
    env = {
        "RAG_DATA_DIR": str(disk / "data"),
        "RAG_API_KEYS": KEY,
        "RAG_RATE_LIMIT_PER_MINUTE": "0",
        "RAG_MIN_FREE_DISK_MB": str(min_free_mb),
        "RAG_REFRESH_SECONDS": "1",
        "RAG_STALE_CHUNK_SECONDS": "1",
        "RAG_STORE_TIMEOUT_SECONDS": "5",
    }
    rng = random.Random(7)
    pool = sentences()
    headers = {"Authorization": f"Bearer {KEY}"}
    with running_service(env, log=log) as (url, server), httpx.Client(base_url=url, timeout=timeout) as http:
        filler = fill(disk, headroom_mb)
        acknowledged: list[str] = []
        n = 0

        def write() -> httpx.Response | None:
            nonlocal n
            batch = articles(n, 4, pool, rng)
            n += 4
            started = time.perf_counter()
            try:
                response = http.post("/documents", json={"articles": batch}, headers=headers)
            except httpx.TimeoutException:
                result.hung = True
                return None
            result.slowest_write_s = max(result.slowest_write_s, time.perf_counter() - started)
            if response.status_code == 200:
                acknowledged.extend(a["id"] for a in batch)
            else:
                result.refused_status.append(response.status_code)
                result.first_refusal = result.first_refusal or response.json().get("detail", "")
            return response

        for _ in range(400):  # bounded: a disk of a few MB fills long before
            response = write()
            if response is None or response.status_code != 200:
                break
        for _ in range(after):
            if write() is None:
                break
        for route in ("/metrics", "/documents", "/health"):
            started = time.perf_counter()
            try:
                result.reads_while_full[route] = http.get(route, headers=headers).status_code
            except httpx.TimeoutException:
                result.hung = True
            result.slowest_read_s = max(result.slowest_read_s, time.perf_counter() - started)
        started = time.perf_counter()
        try:
            answer = http.post("/query", json={"question": "What did Putin say about China's plan?"}, headers=headers)
            result.reads_while_full["/query"] = answer.status_code
        except httpx.TimeoutException:
            result.hung = True
        result.slowest_read_s = max(result.slowest_read_s, time.perf_counter() - started)
        result.acknowledged = len(acknowledged)
        if result.hung:
            server.kill()
            return result
        filler.unlink()
        response = write()
        result.write_after_freeing = response.status_code if response is not None else 0
        time.sleep(3)  # an upkeep pass or two
        for article_id in acknowledged:
            got = http.get(f"/documents/{article_id}", headers=headers)
            if got.status_code != 200 or got.json().get("chunk_count", 0) < 1:
                result.missing_acknowledged += 1
        server.terminate()
        server.wait(timeout=30)
    result.orphans_of = orphans(disk / "data")
    result.orphan_rows = len(result.orphans_of)
    return result


def orphans(data: Path) -> list[str]:
    """The article of each passage row whose article has no record, read from the stopped service's store."""
    from rag.pipeline import build_pipeline
    from rag.settings import Settings

    store = build_pipeline(Settings(data_dir=data, min_free_disk_mb=0)).store
    records = store.article_records()
    with store._using() as (chunks, _, _):
        metas = chunks.get(include=["metadatas"])["metadatas"]
    return [str(m["article_id"]) for m in metas if m["article_id"] not in records]


def failures(result: DiskResult) -> list[str]:
    """What went wrong, in words (empty: it held)."""
    out = []
    if result.hung:
        out.append("a request hung")
    if not result.refused_status or any(s != 507 for s in result.refused_status):
        out.append(f"refused writes answered {result.refused_status}, not 507")
    if any(s != 200 for route, s in result.reads_while_full.items() if route != "/health"):
        out.append(f"reads while full: {result.reads_while_full}")
    if result.write_after_freeing != 200:
        out.append(f"a write after freeing space answered {result.write_after_freeing}")
    if result.missing_acknowledged:
        out.append(f"{result.missing_acknowledged} acknowledged articles missing")
    if result.orphan_rows:
        out.append(f"{result.orphan_rows} orphaned passage rows")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=64, help="size of the tmpfs to mount")
    parser.add_argument("--dir", type=Path, help="use this (small) file system instead of mounting one")
    parser.add_argument("--min-free-mb", type=float, default=8.0, help="RAG_MIN_FREE_DISK_MB for the service")
    parser.add_argument("--headroom-mb", type=float, default=24.0, help="free space the filler leaves")
    parser.add_argument("--log", type=Path, help="write the service's log here")
    args = parser.parse_args()
    started = time.perf_counter()
    log = args.log.open("w") if args.log else None
    if args.dir:
        result = run(args.dir, args.min_free_mb, args.headroom_mb, log=log)
    else:
        with small_disk(args.size_mb) as disk:
            result = run(disk, args.min_free_mb, args.headroom_mb, log=log)
    problems = failures(result)
    print(json.dumps({**asdict(result), "problems": problems, "seconds": round(time.perf_counter() - started, 1)}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
