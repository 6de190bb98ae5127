"""How the shipped ONNX models run: which onnxruntime execution provider (CPU or CUDA), and the one
graph rewrite done at start-up (MiniLM computing in int8, `RAG_EMBEDDER=minilm-int8`).

The rewrite needs the `onnx` package, an optional extra (`pip install 'newsrag[fast]'`); the service
never writes the rewritten graph to disk: it is built in memory from the shipped file at each start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rag.errors import ConfigError

if TYPE_CHECKING:
    import onnxruntime as ort

Device = Literal["auto", "cpu", "cuda"]
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
GPU_INSTALL = (
    "pip install 'newsrag[gpu]', then `pip uninstall -y onnxruntime && pip install --force-reinstall --no-deps "
    "onnxruntime-gpu` (the two wheels share one `onnxruntime` folder and cannot both be installed), with CUDA and "
    "cuDNN libraries that onnxruntime-gpu supports"
)


def execution_providers(device: Device) -> list[str]:
    """The providers to ask a session for: CUDA first where onnxruntime offers it (`auto`, `cuda`), else CPU.

    `cuda` where this onnxruntime has no CUDA provider is a ConfigError; `auto` then quietly uses the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu" or (device == "auto" and CUDA not in available):
        return [CPU]
    if CUDA not in available:
        raise ConfigError(
            f"RAG_EMBED_DEVICE=cuda, but this onnxruntime ({ort.__version__}) has no {CUDA} "
            f"(it offers {', '.join(available)}): {GPU_INSTALL}; or set RAG_EMBED_DEVICE=auto or cpu"
        )
    return [CUDA, CPU]


def open_session(model: str | bytes, options: ort.SessionOptions, device: Device) -> ort.InferenceSession:
    """An onnxruntime session of `model` (a path, or a serialised graph) on `device`.

    onnxruntime-gpu lists the CUDA provider even where it cannot load (no driver, missing CUDA
    libraries) and then falls back to the CPU with a logged error: `auto` accepts that, `cuda` refuses it."""
    import onnxruntime as ort

    session = ort.InferenceSession(model, options, providers=execution_providers(device))
    if device == "cuda" and CUDA not in session.get_providers():
        raise ConfigError(
            f"RAG_EMBED_DEVICE=cuda, but onnxruntime could not start {CUDA} (see its log above: usually a "
            "missing CUDA/cuDNN library or no GPU visible); set RAG_EMBED_DEVICE=auto or cpu to run on the CPU"
        )
    return session


def int8_compute_graph(model_path: Path) -> bytes:
    """The shipped int8 MiniLM graph with each `MatMul(x, Cast(w_int8) * scale)` computed in int8.

    The shipped graph stores int8 weights but dequantises them and multiplies in float32. Here each such
    MatMul becomes `DynamicQuantizeLinear(x)` + `MatMulInteger` over the same int8 weights, rescaled:
    activations are quantised per model run (per batch), which changes the vectors slightly (cosine to
    the shipped graph's about 0.99; bench/model_variants.py measures it) and makes them depend a
    little on what else is in the batch. Raises ConfigError without the `onnx` package or when the
    graph holds no such MatMul (another model file)."""
    try:
        import onnx
        from onnx import TensorProto, helper
    except ImportError as exc:
        raise ConfigError(
            "RAG_EMBEDDER=minilm-int8 rewrites the model with the onnx package: pip install 'newsrag[fast]'"
        ) from exc

    graph = onnx.load(str(model_path))
    producer = {out: node for node in graph.graph.node for out in node.output}
    weights = {init.name for init in graph.graph.initializer}
    nodes = []
    rewritten = 0
    for node in graph.graph.node:
        mul = producer.get(node.input[1]) if node.op_type == "MatMul" else None
        cast = producer.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
        if (
            mul is None
            or cast is None
            or cast.op_type != "Cast"
            or cast.input[0] not in weights
            or mul.input[1] not in weights
        ):
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
        rewritten += 1
    if not rewritten:
        raise ConfigError(f"{model_path} holds no int8-weight MatMul to compute in int8: not the shipped MiniLM")
    del graph.graph.node[:]
    graph.graph.node.extend(nodes)
    return graph.SerializeToString()  # the dequantising Cast/Mul nodes left unused are pruned by onnxruntime
