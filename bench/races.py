"""Two replicas writing one article at the same moment: `python -m bench.races [--rounds 300]`.

Starts a Chroma server (`chroma run`) on loopback and builds two pipelines ("replicas") against it. Each round,
two threads released by one barrier write a different version of the same article id, one through each
replica. After each round the store must hold the record of one version and that version's passages (a
"lost" round: the record names a version whose passages are gone, the article can no longer be found). At the
end, once leftovers are stale (`--stale-seconds`), one upkeep pass (`Pipeline.maintain`) must leave exactly
the winning version's passages. Prints one JSON line; exits 1 on any lost round or leftover.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.service import free_port
from rag.errors import RagError
from rag.models import ArticleFields
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

ARTICLE = "race-1"


@dataclass
class RaceResult:
    rounds: int
    lost_rounds: int  # the record's version had fewer passages than it should, right after the round
    leftover_rows: int  # passages of other versions still stored after the final upkeep pass
    missing_after_upkeep: int  # passages of the record's version missing after it
    failed_writes: int  # writes answered with an error (the store failed): not lost, refused
    first_errors: list[str]
    seconds: float


def chroma_server(path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A `chroma run` on a free loopback port, started and answering."""
    port = free_port()
    chroma = Path(sys.executable).with_name("chroma")
    argv = [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("chroma server did not start")


def rows(pipeline: Pipeline) -> tuple[int, int, int]:
    """(passages the record's version should have, those of its version stored, all stored) of the article."""
    record = pipeline.store.get_article(ARTICLE)
    got = pipeline.store.chunks_of(ARTICLE)
    return record.chunk_count, sum(1 for h in got if h == record.content_hash), len(got)


def race(one: Pipeline, two: Pipeline, rounds: int, stale_seconds: float) -> RaceResult:
    started = time.perf_counter()
    lost = 0
    errors: list[str] = []
    for n in range(rounds):
        barrier = threading.Barrier(2)

        def write(pipeline: Pipeline, tag: str, n: int = n, barrier: threading.Barrier = barrier) -> None:
            body = f"Round {n}, version {tag}. " + " ".join(
                f"The port handled {i * (n + 1)} ships in week {n} of the {tag} count." for i in range(30)
            )
            barrier.wait()
            try:
                pipeline.add([ArticleFields(ARTICLE, f"Race round {n} ({tag})", body, "bench", None, None)], 1_000_000)
            except RagError as exc:  # a failed write is reported, not a lost one: the other still lands
                errors.append(f"round {n} ({tag}): {exc}")

        threads = [threading.Thread(target=write, args=(p, t)) for p, t in ((one, "a"), (two, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        expected, mine, _ = rows(one)
        lost += mine < expected
    time.sleep(stale_seconds + 0.5)
    one.maintain()
    expected, mine, total = rows(one)
    return RaceResult(
        rounds, lost, total - mine, expected - mine, len(errors), errors[:5], round(time.perf_counter() - started, 1)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--stale-seconds", type=float, default=2.0, help="RAG_STALE_CHUNK_SECONDS for the run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = chroma_server(Path(tmp) / "chroma")
        try:

            def replica() -> Pipeline:
                values = {"chroma_host": "127.0.0.1", "chroma_port": port, "data_dir": Path(tmp) / "unused"}
                values |= {"stale_chunk_seconds": args.stale_seconds, "seeds_dir": Path(tmp) / "none"}
                return build_pipeline(Settings(_env_file=None, **values))  # type: ignore[call-arg, arg-type]

            result = race(replica(), replica(), args.rounds, args.stale_seconds)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    print(json.dumps(asdict(result)))
    return 1 if result.lost_rounds or result.leftover_rows or result.missing_after_upkeep else 0


if __name__ == "__main__":
    sys.exit(main())
