from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from rag.pipeline import Pipeline
from rag.settings import Settings

PUTIN = "What did Putin say about China's 12-point plan?"


def test_query_returns_a_cited_answer(client: TestClient) -> None:
    response = client.post("/query", json={"question": PUTIN, "top_k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["answerable"] is True and body["mode"] == "extractive"
    assert "basis" in body["answer"]
    for c in body["citations"]:
        assert f"[{c['n']}]" in body["answer"]
        assert c["passage"][c["quote_start"] - c["start"] : c["quote_end"] - c["start"]] == c["quote"]
        assert c["article_id"] and c["title"] and c["source"]
    assert body["timings_ms"]["total"] > 0
    assert body["retrieved"] is None


def test_query_can_return_the_ranked_passages(client: TestClient) -> None:
    body = client.post("/query", json={"question": PUTIN, "top_k": 7, "include_retrieved": True}).json()
    assert [r["rank"] for r in body["retrieved"]] == list(range(1, 8))
    assert all(r["dense_rank"] or r["lexical_rank"] for r in body["retrieved"])


def test_unanswerable_question_says_so(client: TestClient) -> None:
    body = client.post("/query", json={"question": "Who won the 2018 FIFA World Cup final?"}).json()
    assert body["answerable"] is False and body["citations"] == []


def test_filters_are_applied(client: TestClient) -> None:
    source = "002_353d98a7930780b3.txt"
    body = client.post(
        "/query", json={"question": PUTIN, "filters": {"sources": [source]}, "include_retrieved": True}
    ).json()
    assert body["retrieved"] and all(c["source"] == source for c in body["citations"])


BAD_BODIES = [
    ({"question": ""}, "question"),
    ({"question": "   \n\t "}, "question must not be empty or only whitespace"),
    ({"question": "\u200b\u200b"}, "question must contain a word"),
    ({"question": "?!"}, "question must contain a word"),
    ({"question": "x" * 1001}, "question"),
    ({"question": 42}, "question"),
    ({"question": ["a"]}, "question"),
    ({}, "question"),
    ({"question": "ok", "top_k": 0}, "top_k"),
    ({"question": "ok", "top_k": 51}, "top_k"),
    ({"question": "ok", "top_k": "five"}, "top_k"),
    ({"question": "ok", "colour": "red"}, "colour"),
    ({"question": "ok", "filters": {"date_from": "2023-02-01", "date_to": "2023-01-01"}}, "filters"),
    ({"question": "ok", "filters": {"date_from": "yesterday"}}, "filters.date_from"),
    ({"question": "ok", "filters": {"prefer_from": "2023-02-01", "prefer_to": "2023-01-01"}}, "filters"),
    ({"question": "ok", "filters": {"prefer_to": "next week"}}, "filters.prefer_to"),
    ({"question": "ok", "filters": {"date_from": 0}}, "filters.date_from: must be a date written YYYY-MM-DD"),
    ({"question": "ok", "filters": {"date_to": 1679270400}}, "filters.date_to: must be a date written YYYY-MM-DD"),
    ({"question": "ok", "filters": {"date_from": "1679270400"}}, "is not a date written YYYY-MM-DD"),
    ({"question": "ok", "filters": {"date_from": "20230320"}}, "'20230320' is not a date written YYYY-MM-DD"),
    ({"question": "ok", "filters": {"sources": "a.txt"}}, "filters.sources"),
    ({"question": "ok", "filters": {"unknown": 1}}, "filters.unknown"),
]


@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_gets_a_422_problem_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/query", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422 and field in problem["detail"]


def test_a_timestamp_filter_counts_as_its_day(client: TestClient) -> None:
    body = {"question": "What did Putin say?", "filters": {"date_from": "2023-03-21T23:30:00-05:00"}}
    assert client.post("/query", json=body).status_code == 200


def test_a_number_too_long_to_read_is_named(client: TestClient) -> None:
    raw = b'{"question": "ok", "top_k": ' + b"9" * 5000 + b"}"
    response = client.post("/query", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400 and "number too long" in response.json()["detail"]


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"null", b"[1,2]", b'"just a string"', '{"question": "caf\xe9"}'.encode("latin-1")],
)
def test_malformed_bodies_get_a_4xx_not_a_500(client: TestClient, raw: bytes) -> None:
    response = client.post("/query", content=raw, headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500
    assert response.json()["detail"]


def test_json_sent_as_a_form_is_told_to_say_it_is_json(client: TestClient) -> None:
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {"content-type": content_type} if content_type else {}
        response = client.post("/query", content=b'{"question": "hi"}', headers=headers)
        assert response.status_code == 415, response.text
        assert "Content-Type: application/json" in response.json()["detail"]


def test_json_that_cannot_be_parsed_says_why(client: TestClient) -> None:
    deep = b'{"question": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for raw in (deep, b'{"question": "\xff\xfe"}'):
        response = client.post("/query", content=raw, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500
        assert "error parsing the body" not in response.json()["detail"], response.text


def test_unknown_routes_and_methods_use_the_same_error_model(client: TestClient) -> None:
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["title"] == "Not Found"
    wrong = client.get("/query")
    assert wrong.status_code == 405 and wrong.headers["content-type"] == "application/problem+json"


def test_a_preferred_date_range_is_accepted_and_still_answers(client: TestClient) -> None:
    body = {"question": "What did Putin say about China's 12-point plan?", "include_retrieved": True}
    body["filters"] = {"prefer_from": "2023-02-01", "prefer_to": "2023-03-31"}
    response = client.post("/query", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["answerable"] and response.json()["retrieved"]


def test_top_k_is_limited_by_rag_max_top_k_not_by_the_schema(settings: Settings, pipeline: Pipeline) -> None:
    wide_settings = settings.model_copy(update={"max_top_k": 60})
    wide = Pipeline(
        wide_settings,
        pipeline.store,
        pipeline.embedder,
        pipeline.indexer,
        pipeline.retriever,
        pipeline.ranker,
        pipeline.answerer,
    )
    with TestClient(create_app(wide_settings, pipeline=wide)) as wide_client:
        deadline = time.monotonic() + 60
        while wide_client.get("/health").status_code != 200:
            assert time.monotonic() < deadline, "service did not become ready"
            time.sleep(0.05)
        assert wide_client.post("/query", json={"question": "What did Putin say?", "top_k": 55}).status_code == 200
        refused = wide_client.post("/query", json={"question": "What did Putin say?", "top_k": 61})
        assert refused.status_code == 422 and "top_k" in refused.json()["detail"]


def test_as_of_resolves_the_questions_time_phrase(client: TestClient) -> None:
    body = {"question": "What did Putin say about China's plan this week?", "as_of": "2023-03-22"}
    resolved = client.post("/query", json=body).json()["resolved_dates"]
    assert resolved == {
        "as_of": "2023-03-22",
        "phrase": "this week",
        "date_from": "2023-03-15",
        "date_to": "2023-03-23",
        "published_from": None,
    }
    body = {"question": "What volume of gas did Russia and China agree on in 2019?", "as_of": "2023-03-22"}
    hard = client.post("/query", json=body).json()
    assert hard["resolved_dates"]["published_from"] == "2019-01-01"
    assert hard["answerable"] is True  # the seeds are undated: a bound read from the question lets them through
    today = client.post("/query", json={"question": PUTIN}).json()["resolved_dates"]
    assert today["phrase"] == "" and today["as_of"] >= "2026-01-01"  # today, in the service's time zone
    bad = client.post("/query", json={"question": PUTIN, "as_of": "2023-02-30"})
    assert bad.status_code == 422 and "as_of" in bad.json()["detail"]
