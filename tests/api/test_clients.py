"""Real chat clients against the service on loopback, offline: simonw's `llm` CLI (configured with an
extra-openai-models.yaml, as its docs say) and LangChain's ChatOpenAI. What people hit on day two: a follow-up,
streaming, and an error a person can read."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.main import create_app
from bench.service import serving_in_thread
from rag.pipeline import Pipeline
from rag.settings import Settings

PUTIN = "What did Putin say about China's 12-point plan?"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def base_url(settings: Settings, pipeline: Pipeline) -> Iterator[str]:
    with serving_in_thread(create_app(settings, pipeline=pipeline), timeout=60) as url:
        yield url


def _llm(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLM_USER_PATH": str(home), "OPENAI_API_KEY": "unused-by-newsrag"}
    return subprocess.run([str(BIN / "llm"), *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_llm_cli_asks_follows_up_and_shows_why_a_request_failed(base_url: str, tmp_path: Path) -> None:
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: newsrag\n  model_name: newsrag\n  api_base: {base_url}/v1\n"
        f"- model_id: nope\n  model_name: gpt-4-nope\n  api_base: {base_url}/v1\n",
        encoding="utf-8",
    )
    first = _llm(tmp_path, "-m", "newsrag", PUTIN)
    assert first.returncode == 0, first.stderr
    assert "basis" in first.stdout and "**Sources**" in first.stdout
    follow_up = _llm(tmp_path, "-c", "and what did Xi say about it?")  # continues the logged conversation
    assert follow_up.returncode == 0, follow_up.stderr
    assert "Xi" in follow_up.stdout
    empty = _llm(tmp_path, "-m", "newsrag", "???")
    assert empty.returncode != 0 and "must contain a word" in empty.stderr  # not just "Error code: 400"
    unknown = _llm(tmp_path, "-m", "nope", PUTIN)
    assert unknown.returncode != 0 and "does not exist" in unknown.stderr


def test_langchain_chat_openai_invokes_streams_and_reports_errors(base_url: str) -> None:
    import openai
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{base_url}/v1", api_key="unused-by-newsrag", model="newsrag", max_retries=0)
    reply = chat.invoke(PUTIN)
    assert "basis" in str(reply.content)
    streamed = "".join(str(chunk.content) for chunk in chat.stream(PUTIN))
    assert "basis" in streamed and "**Sources**" in streamed
    history = [("user", PUTIN), ("assistant", str(reply.content)), ("user", "and what did Xi say about it?")]
    assert "Xi" in str(chat.invoke(history).content)
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        ChatOpenAI(base_url=f"{base_url}/v1", api_key="x", model="gpt-4-nope", max_retries=0).invoke(PUTIN)
    with pytest.raises(openai.BadRequestError, match="must contain a word"):
        chat.invoke("???")
