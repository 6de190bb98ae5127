"""Two replicas writing one article at the same moment converge: the record of one version, and exactly that
version's passages (bench/races.py runs the same race for hundreds of rounds)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.races import race, rows
from rag.models import ArticleFields
from rag.pipeline import Pipeline, build_pipeline
from tests.rag.test_chroma_server import ChromaServer, server_settings


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Pipeline, Pipeline]]:
    server = ChromaServer(tmp_path / "chroma")
    server.start()
    try:
        yield tuple(build_pipeline(server_settings(server, tmp_path, stale_chunk_seconds=1.0)) for _ in range(2))  # type: ignore[misc]
    finally:
        server.stop()


def test_barrier_released_writers_never_lose_the_article(replicas: tuple[Pipeline, Pipeline]) -> None:
    result = race(*replicas, rounds=24, stale_seconds=1.0)
    assert (result.lost_rounds, result.leftover_rows, result.missing_after_upkeep) == (0, 0, 0), result


def test_lost_passages_are_written_again_by_the_audit_and_by_an_unchanged_write(
    replicas: tuple[Pipeline, Pipeline],
) -> None:
    one, two = replicas
    body = " ".join(f"Sentence {i} of the story about the harbour budget." for i in range(40))
    item = ArticleFields("race-1", "Harbour budget", body, "test", None, None)
    one.add([item], 1_000_000)
    with one.store._using() as (chunks, _, _):
        chunks.delete(where={"article_id": "race-1"})  # what a lost race or a crash leaves
    expected, mine, _ = rows(one)
    assert mine == 0 < expected
    report = two.add([item], 1_000_000)  # the same version again: not "unchanged" while its passages are gone
    assert (report.unchanged, report.updated) == (0, 1)
    assert rows(one)[1] == expected
    with one.store._using() as (chunks, _, _):
        chunks.delete(where={"article_id": "race-1"})
    audit = two.audit_all()  # a loss no write announced: found by the audit `rag serve` runs after start
    assert audit.missing == ["race-1"] and rows(one)[1] == expected, audit
    assert "Harbour" in two.ask("What is the story about the harbour budget?", top_k=3).retrieved[0].chunk.title
