"""The store refuses an index whose vectors come from another embedding model (real embedded Chroma)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from rag.errors import ConfigError
from rag.pipeline import chroma_client_factory
from rag.settings import Settings
from rag.storage import _MODEL_ID, ChromaStore
from tests.conftest import make_settings


def open_store(settings: Settings, dim: int, model: str) -> ChromaStore:
    return ChromaStore(chroma_client_factory(settings), settings.collection, dim, model)


def test_an_index_remembers_its_model_and_refuses_another(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    assert open_store(settings, 4, "model-a").count_chunks() == 0
    with pytest.raises(ConfigError, match=r"'model-a'.*'model-b'.*RAG_COLLECTION"):
        open_store(settings, 4, "model-b").count_chunks()
    with pytest.raises(ConfigError, match=r"4 dimensions.*8 dimensions"):
        open_store(settings, 8, "model-a").count_chunks()
    assert open_store(settings, 4, "model-a").count_chunks() == 0
    other = make_settings(tmp_path, collection="for-model-b")
    assert open_store(other, 4, "model-b").count_chunks() == 0  # another collection is another index


def test_an_index_from_before_models_were_recorded_is_checked_by_its_dimension(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    store = open_store(settings, 4, "model-a")
    with store._using() as (chunks, _, meta):
        chunks.add(ids=["c1"], embeddings=[[1.0, 0.0, 0.0, 0.0]], documents=["text"], metadatas=[{"article_id": "a"}])
        meta.delete(ids=[_MODEL_ID])
    with pytest.raises(ConfigError, match="4-dimensional vectors"):
        open_store(settings, 8, "model-b").count_chunks()
    assert open_store(settings, 4, "model-b").count_chunks() == 1  # same dimension: taken to be this model's
    with pytest.raises(ConfigError, match="'model-b'"):
        open_store(settings, 4, "model-a").count_chunks()  # and recorded as such


def test_the_service_reports_a_model_mismatch_instead_of_answering(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, ingest_on_start=False)
    assert open_store(settings, 384, "another-model").count_chunks() == 0
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 60
        while (health := client.get("/health")).json()["status"] == "loading":
            assert time.monotonic() < deadline, "start-up never finished"
            time.sleep(0.05)
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert "another-model" in health.json()["detail"]
        answer = client.post("/query", json={"question": "What did Putin say about China's 12-point plan?"})
        assert answer.status_code == 503
        assert "another-model" in answer.json()["detail"]
