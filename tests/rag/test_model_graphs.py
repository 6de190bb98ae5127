"""MiniLM computing in int8 (`RAG_EMBEDDER=minilm-int8`) and where the onnxruntime sessions run (real model files)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from rag.embedding import MINILM, MINILM_INT8, OnnxEmbedder, build_embedder, minilm_files
from rag.errors import ConfigError
from rag.model_graphs import CUDA, execution_providers, int8_compute_graph
from rag.pipeline import chroma_client_factory
from rag.reranking import CrossEncoder
from rag.storage import ChromaStore
from tests.conftest import make_settings

SENTENCES = [
    "Putin praised China's 12-point peace plan during Xi's visit to Moscow.",
    "Gas exports through the Power of Siberia pipeline rose sharply last year.",
    "The football team won the championship on penalties.",
    "short",
]
NO_CUDA = pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this onnxruntime offers CUDA")


@pytest.fixture(scope="module")
def shipped() -> OnnxEmbedder:
    return OnnxEmbedder(MINILM, batch_tokens=64)


@pytest.fixture(scope="module")
def int8() -> OnnxEmbedder:
    return OnnxEmbedder(MINILM_INT8, batch_tokens=64)


def test_int8_vectors_are_384_wide_normalised_and_close_to_minilms(shipped: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    got = int8.embed_queries(SENTENCES)
    assert got.shape == (len(SENTENCES), 384) and got.dtype == np.float32 and int8.dim == 384
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosine = (got * shipped.embed_queries(SENTENCES)).sum(axis=1)
    assert cosine.min() > 0.98
    assert not np.allclose(cosine, 1.0, atol=1e-4)  # it does compute differently


def test_int8_pooled_sentence_vectors_stay_close_to_minilms(shipped: OnnxEmbedder, int8: OnnxEmbedder) -> None:
    text = " ".join(SENTENCES[:3])
    spans = [(0, len(SENTENCES[0])), (len(SENTENCES[0]) + 1, len(SENTENCES[0]) + 1 + len(SENTENCES[1]))]
    [a] = shipped.embed_passages([text], [spans])
    [b] = int8.embed_passages([text], [spans])
    assert float(a.passage @ b.passage) > 0.98
    assert (a.sentences * b.sentences).sum(axis=1).min() > 0.98


def test_int8_has_its_own_model_name_so_a_minilm_index_refuses_it(int8: OnnxEmbedder, tmp_path: Path) -> None:
    assert int8.name != MINILM.name
    settings = make_settings(tmp_path)
    factory = chroma_client_factory(settings)
    assert ChromaStore(factory, settings.collection, 384, MINILM.name).count_chunks() == 0
    with pytest.raises(ConfigError, match=r"all-MiniLM-L6-v2-int8'.*all-MiniLM-L6-v2-int8-compute"):
        ChromaStore(factory, settings.collection, 384, int8.name).count_chunks()


def test_rag_embedder_minilm_int8_builds_the_int8_embedder(tmp_path: Path) -> None:
    embedder = build_embedder(make_settings(tmp_path, embedder="minilm-int8", embed_device="cpu"))
    assert embedder.name == MINILM_INT8.name
    assert build_embedder(make_settings(tmp_path)).name == MINILM.name  # the default is unchanged


def test_the_pipeline_builds_the_embedder_rag_embedder_names(tmp_path: Path) -> None:
    from rag.pipeline import build_embedder as pipelines_builder

    assert pipelines_builder(make_settings(tmp_path, embedder="minilm-int8")).name == MINILM_INT8.name


def test_without_onnx_the_int8_embedder_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` meets where it is not installed
    with pytest.raises(ConfigError, match=r"pip install 'newsrag\[fast\]'"):
        OnnxEmbedder(MINILM_INT8)


def test_the_rewrite_refuses_a_graph_it_does_not_know(tmp_path: Path) -> None:
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(ConfigError, match="not the shipped MiniLM"):
        int8_compute_graph(tmp_path / "other.onnx")
    assert len(int8_compute_graph(minilm_files()[0])) > 1_000_000


@NO_CUDA
def test_auto_runs_on_the_cpu_where_onnxruntime_has_no_cuda(int8: OnnxEmbedder) -> None:
    assert execution_providers("auto") == ["CPUExecutionProvider"]
    assert execution_providers("cpu") == ["CPUExecutionProvider"]
    assert int8.providers == ["CPUExecutionProvider"]


@NO_CUDA
def test_cuda_where_onnxruntime_has_none_is_a_clear_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"RAG_EMBED_DEVICE=cuda.*pip install 'newsrag\[gpu\]'.*auto or cpu"):
        execution_providers("cuda")
    with pytest.raises(ConfigError, match="RAG_EMBED_DEVICE=cuda"):
        build_embedder(make_settings(tmp_path, embed_device="cuda"))
    with pytest.raises(ConfigError, match="RAG_EMBED_DEVICE=cuda"):
        CrossEncoder(device="cuda")
