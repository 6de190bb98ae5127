"""POST /query/stream (Server-Sent Events) in both modes, and the LLM fields of POST /query."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.fake_llm import FakeLLM, Reply, passage_with

PUTIN = "What did Putin say about China's 12-point plan?"


def read_events(client: TestClient, body: dict) -> list[tuple[str, dict]]:
    with client.stream("POST", "/query/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())
    events = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_extractive_answers_stream_as_tokens_then_done(client: TestClient) -> None:
    events = read_events(client, {"question": PUTIN})
    names = [name for name, _ in events]
    assert names[-1] == "done" and set(names[:-1]) == {"token"} and len(names) > 5
    done = events[-1][1]
    assert done["mode"] == "extractive" and done["answerable"] and done["citations"]
    assert "".join(data["text"] for name, data in events if name == "token") == done["answer"]
    assert done == {**client.post("/query", json={"question": PUTIN}).json(), "timings_ms": done["timings_ms"]}


def test_llm_answers_stream_as_tokens_then_done(llm_client: TestClient, fake_llm: FakeLLM) -> None:
    fake_llm.reply = Reply(
        text=lambda r: f"Putin said the plan could be a basis for peace. [{passage_with(r, 'basis')}]"
    )
    events = read_events(llm_client, {"question": PUTIN})
    assert [name for name, _ in events][-1] == "done" and len(events) > 3
    assert all(name == "token" for name, _ in events[:-1])
    done = events[-1][1]
    assert done["mode"] == "llm" and done["flags"] == [] and done["warnings"] == []
    assert done["citations"][0]["n"] == 1 and done["answer"].endswith("[1]")


def test_llm_failure_while_streaming_ends_with_the_extractive_answer(llm_client: TestClient, fake_llm: FakeLLM) -> None:
    fake_llm.reply = Reply(status=500)
    events = read_events(llm_client, {"question": PUTIN})
    done = events[-1][1]
    assert events[-1][0] == "done" and done["mode"] == "extractive" and "HTTP 500" in done["warnings"][0]
    assert "".join(data["text"] for name, data in events if name == "token") == done["answer"]


def test_query_reports_flags_and_mode_for_llm_answers(llm_client: TestClient, fake_llm: FakeLLM) -> None:
    fake_llm.reply = Reply(
        text=lambda r: f"Putin said the plan could be a basis for peace. [{passage_with(r, 'basis')}] [7]"
    )
    body = llm_client.post("/query", json={"question": PUTIN, "top_k": 3}).json()
    assert body["mode"] == "llm" and "[7]" not in body["answer"]
    assert body["flags"] == [
        {"kind": "out_of_range_marker", "sentence": 1, "text": "Putin said the plan could be a basis for peace.",
         "markers": [7], "detail": "only [1]-[3] were given"}
    ]  # fmt: skip


@pytest.mark.parametrize("body", [{"question": "  "}, {"question": "ok", "top_k": 0}, {"question": "ok", "x": 1}])
def test_invalid_stream_requests_get_a_422_problem_before_streaming(client: TestClient, body: dict) -> None:
    response = client.post("/query/stream", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_a_failure_after_the_stream_began_is_an_error_event(
    llm_client: TestClient, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = llm_client.app.state.pipeline  # type: ignore[attr-defined]
    fake_llm.reply = Reply(text="Putin said something. [1]")

    def broken(*args: object) -> None:
        raise RuntimeError("verification crashed")

    monkeypatch.setattr(pipeline.generative.verifier, "verify", broken)
    events = read_events(llm_client, {"question": PUTIN})
    assert events[0][0] == "token" and events[-1][0] == "error"
    assert events[-1][1]["status"] == 500 and "verification crashed" in events[-1][1]["detail"]
