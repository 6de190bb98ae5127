"""How fast the embedding model itself can go on this machine: `python -m bench.model_variants`.

Runs the shipped int8 MiniLM graph the way the service does (one thread per run, batches side by
side; here fixed batches of 4 passages rather than the service's 1,024-token budget) and as it did
before (all cores inside one run), and a variant that computes in int8: each MatMul
over the shipped int8 weights becomes `DynamicQuantizeLinear` + `MatMulInteger` (activations
quantised per run), which changes the vectors slightly. Prints passage tokens/s (news-quiz articles,
batches of 4, length-sorted, longest-padded), one question's latency, and the cosine of each
variant's vectors to the shipped graph's. The int8 variants need `pip install onnx` (not a project
dependency: nothing in the service uses them).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rag.embedding import MiniLMEmbedder, minilm_files

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "news-quiz" / "corpus.jsonl"
QUESTION = "What did Putin say about China's 12-point plan?"


def int8_compute_graph(model_path: Path) -> bytes:
    """The shipped graph with each `MatMul(x, Cast(w_int8) * scale)` computed in int8."""
    import onnx
    from onnx import TensorProto, helper

    graph = onnx.load(str(model_path))
    producer = {out: node for node in graph.graph.node for out in node.output}
    weights = {init.name for init in graph.graph.initializer}
    nodes = []
    for node in graph.graph.node:
        mul = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if cast is None or cast.op_type != "Cast" or cast.input[0] not in weights or mul.input[1] not in weights:
            nodes.append(node)
            continue
        k = f"int8_{len(nodes)}"
        nodes += [
            helper.make_node("DynamicQuantizeLinear", [node.input[0]], [f"{k}_x", f"{k}_xs", f"{k}_xz"]),
            helper.make_node("MatMulInteger", [f"{k}_x", cast.input[0], f"{k}_xz"], [f"{k}_acc"]),
            helper.make_node("Cast", [f"{k}_acc"], [f"{k}_accf"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"{k}_xs", mul.input[1]], [f"{k}_s"]),
            helper.make_node("Mul", [f"{k}_accf", f"{k}_s"], [node.output[0]]),
        ]
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return graph.SerializeToString()  # the dequantising Cast/Mul nodes left unused are pruned by onnxruntime


def session(model: str | bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def feeds(embedder: MiniLMEmbedder, texts: list[str], rows: int) -> list[dict[str, np.ndarray]]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--articles", type=int, default=60)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    embedder = MiniLMEmbedder()
    with args.corpus.open(encoding="utf-8") as handle:
        texts = [json.loads(line)["body"] for _, line in zip(range(args.articles), handle, strict=False)]
    batches = feeds(embedder, texts, 4)
    question = feeds(embedder, [QUESTION], 1)[0]
    model_path, _ = minilm_files()

    variants: list[tuple[str, str | bytes, int, int]] = [
        (f"shipped graph, {cores} intra-op threads", str(model_path), cores, 1),
        ("shipped graph, 1 thread", str(model_path), 1, 1),
        (f"shipped graph, 1 thread, {cores} batches at once (the service)", str(model_path), 1, cores),
    ]
    try:
        variants.append((f"int8 arithmetic, {cores} threads", int8_compute_graph(model_path), cores, 1))
        variants.append((f"int8 arithmetic, 1 thread, {cores} batches at once", variants[-1][1], 1, cores))
    except ImportError:
        print("(int8 variants skipped: pip install onnx)")

    reference = session(str(model_path), cores)
    expected = np.concatenate([pooled(reference, b) for b in batches])
    print(f"cores: {cores}  {len(texts)} news-quiz articles, {len(batches)} batches of 4")
    print("| model run | passage tokens/s | one question ms (p50) | cosine to shipped (min / mean) |")
    print("|---|---:|---:|---|")
    for name, model, threads, parallel in variants:
        sess = session(model, threads)
        rate, latency = measure(sess, batches, question, parallel)
        got = np.concatenate([pooled(sess, b) for b in batches])
        cosine = (got * expected).sum(axis=1)
        print(f"| {name} | {rate:,.0f} | {latency:.1f} | {cosine.min():.4f} / {cosine.mean():.4f} |")


if __name__ == "__main__":
    main()
