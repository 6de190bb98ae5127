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
        "model": "newsrag",
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
        ([{"role": "user", "content": [IMAGE_PART]}], "messages.0.content: the last user message has no text part"),
        ([{"role": "user", "content": "???"}], "messages.0.content: the last user message must contain a word"),
        ([{"role": "user", "content": 5}], "messages.0.content: Input should be a valid string"),
        ([{"role": "user", "content": [{"type": "text"}]}], "a text part needs its text"),
    ],
)
def test_invalid_conversations_get_a_400_naming_the_field_in_problem_and_openai_shape(
    client: TestClient, messages: list, field: str
) -> None:
    response = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": messages})
    assert response.status_code == 400  # OpenAI's status for an invalid request
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert field in body["detail"] and body["status"] == 400
    assert body["error"]["message"] == body["detail"] and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] in (None, "messages")


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
    assert response.status_code == 400 and "temperature: Input should be a finite number" in response.json()["detail"]


def test_a_wrong_content_type_gets_one_plain_message_per_field(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": 5}]})
    errors = response.json()["errors"]
    assert {e["field"] for e in errors} == {"messages.0.content"}
    assert not any(mark in response.json()["detail"] for mark in ("constrained-str", "function-after", "list["))


@pytest.mark.parametrize(("name", "value"), [("temperature", "hot"), ("stream", [1]), ("max_tokens", "many")])
def test_wrong_types_of_openai_fields_are_rejected(client: TestClient, name: str, value: object) -> None:
    body = {"model": "newsrag", "messages": [{"role": "user", "content": PUTIN}], name: value}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400 and name in response.json()["detail"]
    assert response.json()["error"]["param"] == name


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


def test_a_long_chat_keeps_working_and_reads_only_its_last_turns(client: TestClient) -> None:
    # Clients send the whole chat every time: 60 exchanges later the next question still gets an answer.
    chat = []
    for _ in range(60):
        chat += [
            {"role": "user", "content": "Who won the 2022 World Cup?"},
            {"role": "assistant", "content": "x" * 9000},
        ]
    chat += [{"role": "user", "content": PUTIN}, {"role": "assistant", "content": "He said it could be a basis. [1]"}]
    chat.append({"role": "user", "content": "and what did Xi say about it?"})
    response = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": chat})
    assert response.status_code == 200, response.text[:300]
    assert response.json()["rewritten_question"] == "What did Xi say about China's 12-point plan?"


def test_an_unknown_model_is_openais_404_and_aliases_are_answered(
    client: TestClient, openai_client: openai.OpenAI, settings: Settings, pipeline: Pipeline
) -> None:
    body = {"model": "gpt-4-nope", "messages": [{"role": "user", "content": PUTIN}]}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "The model `gpt-4-nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        openai_client.chat.completions.create(model="gpt-4-nope", messages=[{"role": "user", "content": PUTIN}])
    assert openai_client.models.retrieve("newsrag").id == "newsrag"
    assert client.get("/v1/models/gpt-4-nope").json()["error"]["code"] == "model_not_found"
    aliased = settings.model_copy(update={"chat_model_aliases": "gpt-4o-mini, house-model"})
    with TestClient(create_app(aliased, pipeline=pipeline)) as other:
        while other.get("/health").status_code != 200:
            pass
        assert other.get("/v1/models/house-model").status_code == 200
        answered = other.post("/v1/chat/completions", json={**body, "model": "gpt-4o-mini"})
        assert answered.status_code == 200 and answered.json()["model"] == "gpt-4o-mini"


def test_openai_clients_can_show_why_a_request_failed(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as failed:
        openai_client.chat.completions.create(model="newsrag", messages=[{"role": "user", "content": "   "}])
    assert failed.value.status_code == 400 and "must not be empty" in failed.value.message


def test_the_message_carries_url_citation_annotations_over_its_cited_sentences(client: TestClient) -> None:
    body = {"model": "newsrag", "messages": [{"role": "user", "content": PUTIN}]}
    message = client.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]
    assert message["annotations"] and len(message["annotations"]) == len(message["citations"])
    for annotation, citation in zip(message["annotations"], message["citations"], strict=True):
        assert annotation["type"] == "url_citation"
        cited = annotation["url_citation"]
        span = message["content"][cited["start_index"] : cited["end_index"]]
        assert citation["quote"] in span and span.endswith(f"[{citation['n']}]")
        assert cited["title"] == citation["title"]
        assert cited["url"] == citation["url"] or cited["url"].endswith(f"/documents/{citation['article_id']}")


def test_the_streamed_answer_ends_with_annotations_and_usage(client: TestClient) -> None:
    body = {
        "model": "newsrag",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": PUTIN}],
    }
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        raw = "".join(response.iter_text())
    chunks = [json.loads(line[6:]) for line in raw.split("\n\n") if line.startswith("data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    final = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    notes = final["choices"][0]["delta"]["annotations"]
    assert notes and all(text[n["url_citation"]["start_index"] : n["url_citation"]["end_index"]] for n in notes)
    usage = chunks[-1]["usage"]
    assert usage["prompt_tokens"] > 5 and usage["completion_tokens"] > 20
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_sources_are_grouped_by_article_without_doubled_quotation_marks() -> None:
    from datetime import date

    from api.routes.openai_chat import sources_markdown
    from rag.models import Answer, Citation

    def cite(n: int, article: str, quote: str) -> Citation:
        return Citation(n, article, f"Title {article}", "src.txt", date(2023, 3, 21), None, "c", "", 0, 1, quote, 0, 1)

    answer = Answer(
        "q",
        "a [1] b [2] c [3]",
        True,
        [cite(1, "A", "He said yes."), cite(2, "A", "“We agree,” he said."), cite(3, "B", "It was “closely.”")],
    )
    text = sources_markdown(answer)
    assert text.count("Title A") == 1 and text.count("src.txt, 2023-03-21") == 2
    assert "  - [1] “He said yes.”" in text and "  - [2] “We agree,” he said." in text
    assert "  - [3] It was “closely.”" in text and "””" not in text and "““" not in text


# Open WebUI 0.6's default task prompts (backend/open_webui/config.py), as it fills them in.
TITLE_PROMPT = """### Task:
Generate a concise, 3-5 word title with an emoji summarizing the chat history.
### Guidelines:
- The title should clearly represent the main theme or subject of the conversation.
- Use emojis that enhance understanding of the topic, but avoid quotation marks or special formatting.
- Write the title in the chat's primary language; default to English if multilingual.
- Prioritize accuracy over excessive creativity; keep it clear and simple.
- Your entire response must consist solely of the JSON object, without any introductory or concluding text.
- The output must be a single, raw JSON object, without any markdown code fences or other encapsulating text.
- Ensure no conversational text, affirmations, or explanations precede or follow the raw JSON output, as this will \
cause direct parsing failure.
### Output:
JSON format: { "title": "your concise title here" }
### Examples:
- { "title": "📉 Stock Market Trends" },
- { "title": "🍪 Perfect Chocolate Chip Recipe" },
- { "title": "Evolution of Music Streaming" },
- { "title": "Remote Work Productivity Tips" },
- { "title": "Artificial Intelligence in Healthcare" },
- { "title": "🎮 Video Game Development Insights" }
### Chat History:
<chat_history>
USER: {question}
ASSISTANT: {answer}
</chat_history>"""
TAGS_PROMPT = """### Task:
Generate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 more specific subtopic tags.

### Output:
JSON format: { "tags": ["tag1", "tag2", "tag3"] }

### Chat History:
<chat_history>
USER: {question}
ASSISTANT: {answer}
</chat_history>"""
FOLLOW_UP_PROMPT = """### Task:
Suggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next in this conversation as a \
**user**, based on the chat history, to help continue or deepen the discussion.
### Output:
JSON format: { "follow_ups": ["Question 1?", "Question 2?", "Question 3?"] }
### Chat History:
<chat_history>
USER: {question}
ASSISTANT: {answer}
</chat_history>"""


def test_open_webuis_housekeeping_prompts_are_answered_without_retrieval(client: TestClient) -> None:
    asked = client.post(
        "/v1/chat/completions", json={"model": "newsrag", "messages": [{"role": "user", "content": PUTIN}]}
    )
    answer = asked.json()["choices"][0]["message"]["content"]
    filled = {k: v.replace("{question}", PUTIN).replace("{answer}", answer) for k, v in (
        ("title", TITLE_PROMPT), ("tags", TAGS_PROMPT), ("follow_ups", FOLLOW_UP_PROMPT))}  # fmt: skip
    assert len(filled["title"]) > 1000  # longer than a question may be
    replies = {}
    for key, prompt in filled.items():
        messages = [{"role": "user", "content": PUTIN}, {"role": "assistant", "content": answer}]
        messages.append({"role": "user", "content": prompt})
        response = client.post("/v1/chat/completions", json={"model": "newsrag", "messages": messages})
        assert response.status_code == 200, response.text[:300]
        body = response.json()
        assert body["mode"] == "task" and body["choices"][0]["message"]["citations"] == []
        replies[key] = json.loads(body["choices"][0]["message"]["content"])
    assert replies["title"] == {"title": "What did Putin say about China's 12-point plan"}
    assert replies["tags"] == {"tags": []}
    cited_title = asked.json()["choices"][0]["message"]["citations"][0]["title"]
    assert replies["follow_ups"]["follow_ups"] and cited_title in replies["follow_ups"]["follow_ups"][0]


def test_a_housekeeping_prompt_this_service_does_not_run_is_refused_with_a_way_out(client: TestClient) -> None:
    prompt = '### Task:\nWrite a haiku.\n### Output:\nJSON format: { "haiku": "..." }\n<chat_history>\n</chat_history>'
    response = client.post(
        "/v1/chat/completions", json={"model": "newsrag", "messages": [{"role": "user", "content": prompt}]}
    )
    assert response.status_code == 400 and "task model" in response.json()["error"]["message"]


def test_a_chat_takes_as_of_in_the_request_body(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.create(
        model="newsrag",
        messages=[{"role": "user", "content": "What did Xi and Putin agree yesterday?"}],
        extra_body={"as_of": "2023-03-22"},
    )
    resolved = (completion.model_extra or {})["resolved_dates"]
    assert (resolved["phrase"], resolved["date_from"], resolved["as_of"]) == ("yesterday", "2023-03-21", "2023-03-22")
