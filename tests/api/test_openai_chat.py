"""POST /v1/chat/completions and GET /v1/models: validation, follow-ups, and the official openai client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from bench.service import serving_in_thread
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.fake_llm import FakeLLM, Reply

PUTIN = "What did Putin say about China's 12-point plan?"


@pytest.fixture(scope="module")
def base_url(settings: Settings, pipeline: Pipeline) -> Iterator[str]:
    """The app under uvicorn on a loopback port, so a real HTTP client can talk to it."""
    with serving_in_thread(create_app(settings, pipeline=pipeline), timeout=60) as url:
        yield url


@pytest.fixture(scope="module")
def openai_client(base_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=60) as client:
        yield client


def test_the_openai_client_lists_the_model(openai_client: openai.OpenAI) -> None:
    assert [m.id for m in openai_client.models.list()] == ["newsrag"]


def test_the_openai_client_gets_a_cited_answer(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="newsrag", messages=[{"role": "user", "content": PUTIN}], temperature=0.2, max_tokens=300, user="u1"
    )
    message = completion.choices[0].message
    assert completion.object == "chat.completion" and completion.choices[0].finish_reason == "stop"
    assert "basis" in message.content and "[1]" in message.content and "**Sources**" in message.content
    extra = message.model_extra or {}
    assert extra["citations"][0]["n"] == 1 and extra["citations"][0]["quote"] in message.content
    assert (completion.model_extra or {})["rewritten_question"] == PUTIN


def test_the_openai_client_streams_chunks_ending_with_citations(openai_client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": PUTIN},
        {"role": "assistant", "content": "Putin said the plan could serve as a basis. [1]"},
        {"role": "user", "content": "and what did Xi say about it?"},
    ]
    stream = openai_client.chat.completions.create(
        model="newsrag",
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},  # type: ignore[arg-type]
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason == "stop")
    extra = final.model_extra or {}
    assert extra["rewritten_question"] == "What did Xi say about China's 12-point plan?"
    assert extra["citations"] and "Xi" in text and "**Sources**" in text
    assert chunks[-1].usage is not None and chunks[-1].choices == []


def test_the_stream_ends_with_done(client: TestClient) -> None:
    body = {"model": "newsrag", "stream": True, "messages": [{"role": "user", "content": PUTIN}]}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in "".join(response.iter_text()).split("\n\n") if line]
    assert lines[-1] == "data: [DONE]" and all(line.startswith("data: ") for line in lines)


IMAGE_PART = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}


def test_content_parts_and_extra_openai_fields_are_accepted(client: TestClient) -> None:
    body = {
        "model": "anything",
        # an attached image (Open WebUI sends one as a part) is ignored, not refused
        "messages": [{"role": "user", "content": [{"type": "text", "text": PUTIN}, IMAGE_PART]}],
        "temperature": 0.7, "top_p": 1, "n": 1, "user": "x", "logit_bias": {}, "tools": [], "seed": 3,
    }  # fmt: skip
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["citations"]


@pytest.mark.parametrize(
    ("messages", "field"),
    [
        ([], "messages"),
        ([{"role": "wizard", "content": "hi"}], "messages.0.role"),
        ([{"role": "system", "content": "be brief"}], "messages: must contain a user message"),
        ([{"role": "user", "content": "   "}], "messages.0.content"),
        ([{"role": "user", "content": "x" * 1001}], "messages.0.content"),
        ([{"role": "assistant", "content": "x" * 9000}, {"role": "user", "content": "ok?"}], "messages.0.content"),
        ([{"role": "user", "content": "hi"}] * 51, "messages"),
        ([{"role": "user", "content": [IMAGE_PART]}], "messages.0.content: the last user message has no text part"),
        ([{"role": "user", "content": "???"}], "messages.0.content: the last user message must contain a word"),
        ([{"role": "user", "content": 5}], "messages.0.content: Input should be a valid string"),
        ([{"role": "user", "content": [{"type": "text"}]}], "a text part needs its text"),
    ],
)
def test_invalid_conversations_get_a_422_problem_naming_the_field(
    client: TestClient, messages: list, field: str
) -> None:
    response = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": messages})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]


def test_tool_turns_null_stream_and_input_text_parts_are_accepted(client: TestClient) -> None:
    messages = [
        {"role": "user", "content": "What did Xi say?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "search results", "tool_call_id": "c1"},
        {"role": "user", "content": [{"type": "input_text", "text": PUTIN}]},
    ]
    response = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": messages, "stream": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rewritten_question"] == PUTIN and body["choices"][0]["message"]["citations"]


def test_a_temperature_that_is_not_a_number_is_named(client: TestClient) -> None:
    raw = '{"messages": [{"role": "user", "content": "What did Putin say?"}], "temperature": NaN}'
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "temperature: Input should be a finite number" in response.json()["detail"]


def test_a_wrong_content_type_gets_one_plain_message_per_field(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": 5}]})
    errors = response.json()["errors"]
    assert {e["field"] for e in errors} == {"messages.0.content"}
    assert not any(mark in response.json()["detail"] for mark in ("constrained-str", "function-after", "list["))


@pytest.mark.parametrize(("name", "value"), [("temperature", "hot"), ("stream", [1]), ("max_tokens", "many")])
def test_wrong_types_of_openai_fields_are_rejected(client: TestClient, name: str, value: object) -> None:
    body = {"model": "newsrag", "messages": [{"role": "user", "content": PUTIN}], name: value}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 422 and name in response.json()["detail"]


def test_query_with_history_answers_the_rewritten_question(client: TestClient) -> None:
    history = [{"role": "user", "content": PUTIN}, {"role": "assistant", "content": "He said it could be a basis. [1]"}]
    body = client.post("/query", json={"question": "and what did Xi say about it?", "history": history}).json()
    assert body["question"] == "and what did Xi say about it?"
    assert body["rewritten_question"] == "What did Xi say about China's 12-point plan?"
    assert body["answerable"] and "Xi" in body["answer"]
    assert client.post("/query", json={"question": PUTIN}).json()["rewritten_question"] is None


def test_a_streamed_llm_answer_that_fails_verification_is_followed_by_the_fallback(
    llm_client: TestClient, fake_llm: FakeLLM
) -> None:
    fake_llm.reply = Reply(text="The moon is made of green cheese. [1]")
    body = {"model": "newsrag", "stream": True, "messages": [{"role": "user", "content": PUTIN}]}
    with llm_client.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = "".join(response.iter_text())
    chunks = [json.loads(line[6:]) for line in raw.split("\n\n") if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    final = chunks[-1]
    assert final["mode"] == "extractive" and final["choices"][0]["finish_reason"] == "stop"
    assert text.startswith("The moon") and "\n\n---\n\n" in text and "basis" in text.split("---", 1)[1]
    assert raw.endswith("data: [DONE]\n\n")
