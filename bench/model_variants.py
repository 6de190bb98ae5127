"""How fast the embedding model itself can go on this machine: `python -m bench.model_variants`.

Runs the shipped int8 MiniLM graph the way the service does (one thread per run, batches side by
side; here fixed batches of 4 passages rather than the service's 1,024-token budget) and as it did
before (all cores inside one run), and two variants: one that computes in int8 (each MatMul over the
shipped int8 weights becomes `DynamicQuantizeLinear` + `MatMulInteger`, activations quantised per
run, which changes the vectors slightly; `rag.model_graphs.int8_compute_graph`, what
`RAG_EMBEDDER=minilm-int8` runs) and one with the same weights rebuilt as onnxruntime's fused BERT
ops (`fused_graph`). Prints passage tokens/s (news-quiz articles, batches of 4,
length-sorted, longest-padded), one question's latency, the cosine of each variant's vectors to the
shipped graph's, and the RSS one session of each graph holds (measured in a fresh process). The
variants need the `onnx` package: `pip install 'newsrag[fast]'`.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rag.embedding import OnnxEmbedder, minilm_files
from rag.errors import ConfigError
from rag.model_graphs import int8_compute_graph

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "news-quiz" / "corpus.jsonl"
QUESTION = "What did Putin say about China's 12-point plan?"


def fused_graph(model_path: Path, heads: int = 12) -> bytes:
    """The same weights rebuilt as onnxruntime's fused BERT ops, which its optimiser cannot find itself.

    The shipped export spells attention out (per-head Reshape/Transpose, an IsNaN guard), so
    onnxruntime fuses only SkipLayerNormalization and BiasGelu. Here each layer is one `Attention`
    (packed QKV weights, the right-padding mask as lengths), two `SkipLayerNormalization` and a
    `BiasGelu`, and the embeddings one `EmbedLayerNormalization`; weights are the shipped ones dequantised.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = onnx.load(str(model_path)).graph
    stored = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}

    def value(name: str) -> np.ndarray:
        if name in stored:
            return numpy_helper.to_array(stored[name])
        node = producer[name]
        if node.op_type == "Cast":
            return value(node.input[0]).astype(np.float32)
        return (value(node.input[0]) * value(node.input[1])).astype(np.float32)  # Mul by the scale

    dense: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # "…query" -> (weight, bias)
    norms: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}  # "…LayerNorm" -> (gamma, beta, epsilon)
    for node in graph.node:
        if node.op_type == "Add":
            bias = [i for i in node.input if i in stored and i.endswith(".bias")]
            matmul = [producer.get(i) for i in node.input if i not in stored]
            if bias and matmul and matmul[0] is not None and matmul[0].op_type == "MatMul":
                dense[bias[0].removesuffix(".bias")] = (value(matmul[0].input[1]), value(bias[0]))
        elif node.op_type == "LayerNormalization":
            eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
            norms[node.input[1].removesuffix(".weight")] = (value(node.input[1]), value(node.input[2]), eps)
    prefix = next(k for k in dense if "encoder.layer.0." in k).split("encoder.layer.0.")[0]
    layers = sorted({int(k.split("encoder.layer.")[1].split(".")[0]) for k in dense if "encoder.layer." in k})
    weights: list[Any] = []

    def weight(name: str, array: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    ms = {"domain": "com.microsoft"}
    emb = prefix + "embeddings."
    gamma, beta, eps = norms[emb + "LayerNorm"]
    nodes = [helper.make_node("Cast", [n], [f"{n}32"], to=TensorProto.INT32) for n in ("input_ids", "token_type_ids")]
    nodes.append(helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32))
    tables = [weight(t, value(f"{emb}{t}_embeddings.weight")) for t in ("word", "position", "token_type")]
    inputs = ["input_ids32", "token_type_ids32", *tables, weight("emb_g", gamma), weight("emb_b", beta), "mask32"]
    nodes.append(helper.make_node("EmbedLayerNormalization", inputs, ["h0", "lengths"], epsilon=eps, **ms))
    x = "h0"
    for i in layers:
        p = f"{prefix}encoder.layer.{i}."
        q, k, v = (dense[f"{p}attention.self.{s}"] for s in ("query", "key", "value"))
        qkv_w = weight(f"qkv_w{i}", np.concatenate([q[0], k[0], v[0]], axis=1))
        qkv_b = weight(f"qkv_b{i}", np.concatenate([q[1], k[1], v[1]]))
        out_w, out_b = dense[p + "attention.output.dense"]
        g1, b1, e1 = norms[p + "attention.output.LayerNorm"]
        up_w, up_b = dense[p + "intermediate.dense"]
        down_w, down_b = dense[p + "output.dense"]
        g2, b2, e2 = norms[p + "output.LayerNorm"]
        nodes += [
            helper.make_node("Attention", [x, qkv_w, qkv_b, "lengths"], [f"att{i}"], num_heads=heads, **ms),
            helper.make_node("MatMul", [f"att{i}", weight(f"out_w{i}", out_w)], [f"out{i}"]),
            helper.make_node(
                "SkipLayerNormalization",
                [f"out{i}", x, weight(f"g1_{i}", g1), weight(f"b1_{i}", b1), weight(f"out_b{i}", out_b)],
                [f"mid{i}"],
                epsilon=e1,
                **ms,
            ),
            helper.make_node("MatMul", [f"mid{i}", weight(f"up_w{i}", up_w)], [f"up{i}"]),
            helper.make_node("BiasGelu", [f"up{i}", weight(f"up_b{i}", up_b)], [f"gelu{i}"], **ms),
            helper.make_node("MatMul", [f"gelu{i}", weight(f"down_w{i}", down_w)], [f"down{i}"]),
            helper.make_node(
                "SkipLayerNormalization",
                [f"down{i}", f"mid{i}", weight(f"g2_{i}", g2), weight(f"b2_{i}", b2), weight(f"down_b{i}", down_b)],
                [f"h{i + 1}"],
                epsilon=e2,
                **ms,
            ),
        ]
        x = f"h{i + 1}"
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", 384])
    fused = helper.make_graph(nodes, "minilm_fused", list(graph.input), [output], weights)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(fused, opset_imports=opsets).SerializeToString()


def session(model: str | bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def feeds(embedder: OnnxEmbedder, texts: list[str], rows: int) -> list[dict[str, np.ndarray]]:
    encodings = sorted(embedder._tokenizer.encode_batch(texts), key=lambda e: len(e.ids))
    out = []
    for b in range(0, len(encodings), rows):
        batch = encodings[b : b + rows]
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, e in enumerate(batch):
            ids[r, : len(e.ids)] = e.ids
            mask[r, : len(e.ids)] = 1
        out.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})
    return out


def pooled(sess: ort.InferenceSession, feed: dict[str, np.ndarray]) -> np.ndarray:
    states = sess.run(None, feed)[0]
    mask = feed["attention_mask"][..., None].astype(np.float32)
    vectors = (states * mask).sum(axis=1) / mask.sum(axis=1)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def measure(
    sess: ort.InferenceSession, batches: list[dict[str, Any]], question: dict[str, Any], parallel: int
) -> tuple[float, float]:
    tokens = sum(int(b["attention_mask"].sum()) for b in batches)
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        if parallel > 1:
            with ThreadPoolExecutor(parallel) as pool:
                list(pool.map(lambda b: sess.run(None, b), batches))
        else:
            for b in batches:
                sess.run(None, b)
        rates.append(tokens / (time.perf_counter() - started))
    latencies = []
    for _ in range(200):
        started = time.perf_counter()
        sess.run(None, question)
        latencies.append((time.perf_counter() - started) * 1000)
    return max(rates), statistics.median(latencies)


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) / 1024


def session_memory(graph: str) -> float:
    """MB of RSS one session of `graph` ("shipped", "int8", "fused") holds, measured in a fresh process."""
    model_path, _ = minilm_files()
    before = _rss_mb()
    model: str | bytes = {"shipped": lambda: str(model_path), "int8": lambda: int8_compute_graph(model_path)}.get(
        graph, lambda: fused_graph(model_path)
    )()
    sess = session(model, 1)
    del model
    gc.collect()
    held = _rss_mb() - before
    del sess
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--articles", type=int, default=60)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    embedder = OnnxEmbedder()
    with args.corpus.open(encoding="utf-8") as handle:
        texts = [json.loads(line)["body"] for _, line in zip(range(args.articles), handle, strict=False)]
    batches = feeds(embedder, texts, 4)
    question = feeds(embedder, [QUESTION], 1)[0]
    model_path, _ = minilm_files()

    variants: list[tuple[str, str, str | bytes, int, int]] = [
        (f"shipped graph, {cores} intra-op threads", "shipped", str(model_path), cores, 1),
        ("shipped graph, 1 thread", "shipped", str(model_path), 1, 1),
        (f"shipped graph, 1 thread, {cores} batches at once (the service)", "shipped", str(model_path), 1, cores),
    ]
    try:
        int8 = int8_compute_graph(model_path)
        variants.append((f"int8 arithmetic, {cores} threads", "int8", int8, cores, 1))
        variants.append((f"int8 arithmetic, 1 thread, {cores} batches at once", "int8", int8, 1, cores))
        variants.append(
            (f"fused BERT ops, 1 thread, {cores} batches at once", "fused", fused_graph(model_path), 1, cores)
        )
    except (ImportError, ConfigError):
        print("(int8 and fused variants skipped: pip install 'newsrag[fast]')")
    spawn = multiprocessing.get_context("spawn")
    memory: dict[str, float] = {}
    for graph in dict.fromkeys(v[1] for v in variants):
        with ProcessPoolExecutor(1, mp_context=spawn) as child:
            memory[graph] = child.submit(session_memory, graph).result()

    reference = session(str(model_path), cores)
    expected = np.concatenate([pooled(reference, b) for b in batches])
    print(f"cores: {cores}  {len(texts)} news-quiz articles, {len(batches)} batches of 4")
    print("| model run | passage tokens/s | one question ms (p50) | cosine to shipped (min / mean) | session MB |")
    print("|---|---:|---:|---|---:|")
    for name, graph, model, threads, parallel in variants:
        sess = session(model, threads)
        rate, latency = measure(sess, batches, question, parallel)
        got = np.concatenate([pooled(sess, b) for b in batches])
        cosine = (got * expected).sum(axis=1)
        print(
            f"| {name} | {rate:,.0f} | {latency:.1f} | {cosine.min():.4f} / {cosine.mean():.4f} | {memory[graph]:.0f} |"
        )


if __name__ == "__main__":
    main()
