"""Shared fixtures: one real index of the seeds (real embedder, embedded Chroma) per test session."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from rag.pipeline import Pipeline, build_generative, build_pipeline
from rag.settings import Settings
from tests.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
QUESTIONS = ROOT / "eval" / "questions" / "seeds.jsonl"
NEWS_QUIZ = ROOT.parent / "shared" / "corpora" / "news-quiz"


def make_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for tests: everything explicit, nothing read from the developer's environment."""
    values: dict[str, object] = {"data_dir": data_dir, "seeds_dir": SEEDS, "refresh_seconds": 0.0}
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("index"))


@pytest.fixture(scope="session")
def pipeline(settings: Settings) -> Pipeline:
    built = build_pipeline(settings)
    built.ingest([SEEDS])
    return built


@pytest.fixture(scope="session")
def client(settings: Settings, pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(settings, pipeline=pipeline)) as test_client:
        deadline = time.monotonic() + 60
        while test_client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.05)
        yield test_client


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The loopback LLM server, with a fresh script and request log for each test."""
    fake_llm_server.reset()
    return fake_llm_server


def make_llm_settings(data_dir: Path, base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"llm": "openai", "llm_model": "fake-model", "llm_base_url": base_url}
    values["llm_timeout"] = 1.5
    values.update(overrides)
    return make_settings(data_dir, **values)


def with_llm(pipeline: Pipeline, settings: Settings) -> Pipeline:
    """The shared seed index answered through the configured LLM (one index, two answerers)."""
    generative = build_generative(settings, pipeline.embedder, pipeline.answerer)
    return Pipeline(
        settings,
        pipeline.store,
        pipeline.embedder,
        pipeline.indexer,
        pipeline.retriever,
        pipeline.ranker,
        pipeline.answerer,
        generative,
    )


@pytest.fixture(scope="session")
def llm_pipeline(settings: Settings, pipeline: Pipeline, fake_llm_server: FakeLLM) -> Pipeline:
    return with_llm(pipeline, make_llm_settings(settings.data_dir, fake_llm_server.base_url))


@pytest.fixture(scope="session")
def llm_client(llm_pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(llm_pipeline.settings, pipeline=llm_pipeline)) as test_client:
        deadline = time.monotonic() + 60
        while test_client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.05)
        yield test_client


@pytest.fixture(scope="session")
def seed_questions() -> dict[str, dict]:
    with QUESTIONS.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return {row["id"]: row for row in rows}
