from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.main import create_app
from api.schemas import JsonlArticleIn
from rag.errors import InvalidDocument
from rag.loading import parse_jsonl
from tests.conftest import SEEDS, make_settings

KEY = "test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}


def wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    corpus = tmp_path_factory.mktemp("corpus")
    (corpus / "002.txt").write_text((SEEDS / "002_353d98a7930780b3.txt").read_text(encoding="utf-8"), encoding="utf-8")
    settings = make_settings(
        tmp_path_factory.mktemp("writes"),
        seeds_dir=corpus,
        api_keys=f"{KEY},second-key-0123456789",
        rate_limit_per_minute=1000,
        max_body_bytes=200_000,
        max_upload_bytes=100_000,
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        yield client


ARTICLE = {
    "id": "test-quake-1",
    "title": "Magnitude 5.9 quake strikes eastern Afghanistan",
    "body": "A magnitude 5.9 earthquake hit eastern Afghanistan on Wednesday.\n\nMore than 1,000 people were killed.",
    "source": "example.com",
    "published_at": "2022-06-22",
    "url": "https://example.com/quake",
}


def ask(client: TestClient, question: str, **extra: object) -> dict:
    response = client.post("/query", json={"question": question, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_post_get_replace_and_delete_an_article(writer: TestClient) -> None:
    created = writer.post("/documents", json=ARTICLE, headers=AUTH)
    assert created.status_code == 200, created.text
    assert created.json()["added"] == 1 and created.json()["ids"] == ["test-quake-1"]
    doc = writer.get("/documents/test-quake-1").json()
    assert doc["text"] == ARTICLE["body"] and doc["published_at"] == "2022-06-22" and doc["chunk_count"] >= 1
    answer = ask(writer, "What was the magnitude of the Afghanistan earthquake?")
    assert "5.9" in answer["answer"] and answer["citations"][0]["article_id"] == "test-quake-1"

    again = writer.post("/documents", json=ARTICLE, headers=AUTH).json()
    assert (again["added"], again["updated"], again["unchanged"]) == (0, 0, 1)

    changed = dict(ARTICLE, body=ARTICLE["body"].replace("5.9", "6.1"))
    assert writer.post("/documents", json=changed, headers=AUTH).json()["updated"] == 1
    answer = ask(writer, "What was the magnitude of the Afghanistan earthquake?", include_retrieved=True)
    assert "6.1" in answer["answer"]
    assert all("5.9" not in r["text"] for r in answer["retrieved"])

    assert writer.delete("/documents/test-quake-1", headers=AUTH).status_code == 204
    assert writer.get("/documents/test-quake-1").status_code == 404
    assert writer.delete("/documents/test-quake-1", headers=AUTH).status_code == 404
    answer = ask(writer, "What was the magnitude of the Afghanistan earthquake?", include_retrieved=True)
    assert all(r["article_id"] != "test-quake-1" for r in answer["retrieved"])


def test_a_batch_is_added_in_one_request(writer: TestClient) -> None:
    batch = {
        "articles": [
            dict(ARTICLE, id=f"batch-{i}", title=f"Story {i}", body=f"Story number {i} happened.") for i in range(3)
        ]
    }
    result = writer.post("/documents", json=batch, headers={"X-API-Key": KEY}).json()
    assert result["added"] == 3 and result["ids"] == ["batch-0", "batch-1", "batch-2"]
    ids = {d["id"] for d in writer.get("/documents").json()["documents"]}
    assert {"batch-0", "batch-1", "batch-2"} <= ids


def test_text_and_jsonl_uploads(writer: TestClient) -> None:
    text = "First story headline\nThe first story has a body.\nREAD MORE\nSecond story headline\nThe second story body."
    result = writer.post("/documents/upload", files={"file": ("two.txt", text.encode(), "text/plain")}, headers=AUTH)
    assert result.status_code == 200, result.text
    assert result.json()["ids"] == ["two-1", "two-2"]
    # Re-uploading the file without its second story removes that story.
    one = text.split("READ MORE")[0]
    assert (
        writer.post("/documents/upload", files={"file": ("two.txt", one.encode())}, headers=AUTH).json()["removed"] == 1
    )
    lines = "\n".join(json.dumps(dict(ARTICLE, id=f"j{i}")) for i in range(2))
    result = writer.post("/documents/upload", files={"file": ("c.jsonl", lines.encode())}, headers=AUTH)
    assert result.json()["ids"] == ["j0", "j1"]


def test_uploaded_text_is_normalised(writer: TestClient) -> None:
    raw = "Caf\xe9 headline\r\nThe caf\xe9 opened\x07 on Monday.\r\n".encode("cp1252")
    assert writer.post("/documents/upload", files={"file": ("cafe.txt", raw)}, headers=AUTH).status_code == 200
    doc = writer.get("/documents/cafe-1").json()
    assert doc["title"] == "Café headline" and "\r" not in doc["text"] and "\x07" not in doc["text"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong"}, 403),
        ({"X-API-Key": ""}, 401),
        ({"Authorization": "Basic abc"}, 401),
    ],
)
def test_writes_need_a_valid_key(writer: TestClient, headers: dict, status: int) -> None:
    response = writer.post("/documents", json=ARTICLE, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert "key" in response.json()["detail"]
    assert writer.delete("/documents/002-1", headers=headers).status_code == status


BAD_ARTICLES = [
    (dict(ARTICLE, id="../../etc/passwd"), "id"),
    (dict(ARTICLE, id="a/b"), "id"),
    (dict(ARTICLE, id=""), "id"),
    (dict(ARTICLE, title="   "), "title"),
    (dict(ARTICLE, body=""), "body"),
    (dict(ARTICLE, url="javascript:alert(1)"), "url"),
    (dict(ARTICLE, published_at="June"), "published_at"),
    (dict(ARTICLE, extra=1), "extra"),
    (dict(ARTICLE, source="   "), "source"),
    ({"articles": []}, "articles"),
]


@pytest.mark.parametrize(("body", "field"), BAD_ARTICLES)
def test_bad_articles_get_a_422_naming_the_field(writer: TestClient, body: dict, field: str) -> None:
    response = writer.post("/documents", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_an_uploaded_page_is_extracted_and_cited_by_its_extracted_text(writer: TestClient) -> None:
    from tests.pages import article_page, section_front

    response = writer.post(
        "/documents/upload", files={"file": ("rotterdam-port.html", article_page().encode(), "text/html")}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    doc = writer.get("/documents/rotterdam-port").json()
    assert (doc["title"], doc["source"], doc["author"]) == (
        "Rotterdam port traffic falls again as ships avoid Red Sea",
        "Harbour Times",
        "Anna de Vries",
    )
    assert (doc["published_at"], doc["url"]) == (
        "2024-10-29",
        "https://harbourtimes.example/news/rotterdam-port-traffic",
    )
    answer = ask(writer, "By what percentage did Rotterdam port volumes drop from a year earlier?")
    citation = next(c for c in answer["citations"] if c["article_id"] == "rotterdam-port")
    assert doc["text"][citation["quote_start"] : citation["quote_end"]] == citation["quote"]
    assert "4.2 percent" in citation["quote"]
    refused = writer.post("/documents/upload", files={"file": ("front.html", section_front().encode())}, headers=AUTH)
    assert refused.status_code == 422
    assert "no article found on this page" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("notes.pdf", b"text", 422),
        ("page.html.gz", b"<html>not gzipped</html>", 422),
        ("../../etc/passwd.txt", b"Headline\nBody.", 200),  # only the base name is ever used
        ("bin.txt", b"\x00\x01\x02", 422),
        ("empty.txt", b"   \n  ", 422),
        ("bad.jsonl", b'{"id": "x"', 422),
        ("badid.jsonl", json.dumps(dict(ARTICLE, id="a/b")).encode(), 422),
        ("nullid.jsonl", json.dumps(dict(ARTICLE, id=None)).encode(), 422),
        ("list.jsonl", b"[1, 2]", 422),
        ("longtitle.jsonl", json.dumps(dict(ARTICLE, title="t" * 501)).encode(), 422),
        ("big.txt", b"Headline\n" + b"word " * 30_000, 413),
    ],
)
def test_bad_uploads_get_a_clear_4xx(writer: TestClient, name: str, content: bytes, status: int) -> None:
    response = writer.post("/documents/upload", files={"file": (name, content)}, headers=AUTH)
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.json()["detail"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (dict(ARTICLE, url=123), "file.line 2.url"),
        (dict(ARTICLE, url=["https://example.com"]), "file.line 2.url"),
        (dict(ARTICLE, url="javascript:alert(1)"), "file.line 2.url"),
        (dict(ARTICLE, title=["a", "b"]), "file.line 2.title"),
        (dict(ARTICLE, body={"x": "y"}), "file.line 2.body"),
        (dict(ARTICLE, published_at="2024-02-30"), "file.line 2.published_at"),
        (dict(ARTICLE, published_at="2022-06-13xyz"), "file.line 2.published_at"),
    ],
)
def test_jsonl_lines_are_held_to_the_rules_of_post(writer: TestClient, row: dict, field: str) -> None:
    lines = json.dumps(dict(ARTICLE, id="rules-ok")) + "\n" + json.dumps(dict(row, id="rules-bad"))
    response = writer.post("/documents/upload", files={"file": ("rules.jsonl", lines.encode())}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"], response.json()
    # Nothing of a refused upload is written, and reads keep working.
    assert writer.get("/documents/rules-ok").status_code == 404
    assert writer.get("/documents").status_code == 200


def test_jsonl_corpus_fields_are_read_like_a_corpus(writer: TestClient) -> None:
    row = {k: v for k, v in ARTICLE.items() if k not in ("body", "source")}
    row.update(id="corpus-1", text=ARTICLE["body"], published_at="2022-06-22T10:00:00Z", authors=["A. Writer"])
    response = writer.post(
        "/documents/upload", files={"file": ("corpus.jsonl", json.dumps(row).encode())}, headers=AUTH
    )
    assert response.status_code == 200, response.text
    doc = writer.get("/documents/corpus-1").json()
    assert (doc["text"], doc["published_at"], doc["source"]) == (ARTICLE["body"], "2022-06-22", "corpus.jsonl")


def test_an_upload_holds_one_file(writer: TestClient) -> None:
    files = [
        ("file", ("m1.txt", b"First headline\nFirst body.")),
        ("file", ("m2.txt", b"Second headline\nSecond body.")),
    ]
    response = writer.post("/documents/upload", files=files, headers=AUTH)
    assert response.status_code == 422 and "one file" in response.json()["detail"], response.text
    assert writer.get("/documents/m1-1").status_code == 404 and writer.get("/documents/m2-1").status_code == 404


def test_an_article_of_page_furniture_only_is_refused_with_the_reason(writer: TestClient) -> None:
    response = writer.post("/documents", json=dict(ARTICLE, id="furniture", body="VIDEO\n01:37"), headers=AUTH)
    assert response.status_code == 422 and "captions" in response.json()["detail"], response.text


def test_one_request_may_not_hold_two_versions_of_an_article(writer: TestClient) -> None:
    batch = {"articles": [dict(ARTICLE, id="twice"), dict(ARTICLE, id="twice", body="Another version.")]}
    response = writer.post("/documents", json=batch, headers=AUTH)
    assert response.status_code == 422 and "twice" in response.json()["detail"], response.text
    lines = "\n".join(json.dumps(a) for a in batch["articles"])
    response = writer.post("/documents/upload", files={"file": ("twice.jsonl", lines.encode())}, headers=AUTH)
    assert response.status_code == 422 and "lines 1 and 2" in response.json()["detail"], response.text
    assert writer.get("/documents/twice").status_code == 404


def test_a_replacement_keeps_none_of_the_old_versions_fields(writer: TestClient) -> None:
    dated = dict(ARTICLE, id="meta-1")
    assert writer.post("/documents", json=dated, headers=AUTH).status_code == 200
    bare = {"id": "meta-1", "title": ARTICLE["title"], "body": ARTICLE["body"]}
    assert writer.post("/documents", json=bare, headers=AUTH).json()["updated"] == 1
    doc = writer.get("/documents/meta-1").json()
    assert (doc["source"], doc["published_at"], doc.get("url")) == ("api", None, None), doc
    filtered = ask(
        writer,
        "What was the magnitude of the Afghanistan earthquake?",
        include_retrieved=True,
        filters={"article_ids": ["meta-1"], "date_from": "2022-06-01"},
    )
    assert not filtered["retrieved"]


def test_an_article_posted_over_an_uploaded_one_leaves_the_file(writer: TestClient) -> None:
    two = "\n".join(json.dumps(dict(ARTICLE, id=i, body=f"Story {i} body.")) for i in ("sf-a", "sf-b"))
    assert writer.post("/documents/upload", files={"file": ("sf.jsonl", two.encode())}, headers=AUTH).status_code == 200
    assert writer.post("/documents", json=dict(ARTICLE, id="sf-a", body="A new sf-a."), headers=AUTH).status_code == 200
    one = json.dumps(dict(ARTICLE, id="sf-b", body="Story sf-b body."))
    result = writer.post("/documents/upload", files={"file": ("sf.jsonl", one.encode())}, headers=AUTH).json()
    assert result["removed"] == 0, result
    assert writer.get("/documents/sf-a").json()["text"] == "A new sf-a."


def test_path_like_ids_never_reach_the_filesystem(writer: TestClient) -> None:
    for path in ("/documents/..%2F..%2Fetc%2Fpasswd", "/documents/%2e%2e", "/documents/a%00b"):
        response = writer.get(path)
        assert response.status_code in (404, 422)
        assert "root:" not in response.text


def test_oversized_bodies_are_refused_before_reading(writer: TestClient) -> None:
    big = {"question": "x" * 300_000}
    response = writer.post("/query", json=big)
    assert response.status_code == 413 and "larger than" in response.json()["detail"]
    response = writer.post(
        "/query", content=b"{}", headers={"content-length": "abc", "content-type": "application/json"}
    )
    assert response.status_code == 400
    # A chunked body declares no length: it is counted as it arrives, and refused with the same 413.
    chunked = writer.post(
        "/query", content=iter([b'{"question": "', b"x" * 250_000, b'"}']), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413 and "larger than" in chunked.json()["detail"], chunked.text
    assert chunked.headers["x-request-id"]


def test_every_response_has_a_request_id(writer: TestClient) -> None:
    assert len(writer.get("/health").headers["x-request-id"]) == 32
    assert writer.get("/nope", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert writer.post("/query", json={}).headers["x-request-id"]


def test_metrics_count_requests_by_route(writer: TestClient) -> None:
    writer.post("/query", json={"question": "What did Putin say about gas?"})
    text = writer.get("/metrics").text
    assert 'newsrag_requests_total{method="POST",route="/query",status="200"}' in text
    assert "newsrag_request_duration_seconds_bucket" in text
    assert "newsrag_index_chunks" in text
    # The process, the garbage collector and the interpreter, beside the service's own figures.
    for family in ("process_resident_memory_bytes", "python_gc_collections_total", "python_info"):
        assert family in text, family


def test_no_keys_configured_means_writes_are_disabled(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path, seeds_dir=tmp_path / "none"))) as client:
        response = client.post("/documents", json=ARTICLE, headers=AUTH)
        assert response.status_code in (403, 503)
        wait_for = time.monotonic() + 30
        while client.get("/health").status_code != 200 and time.monotonic() < wait_for:
            time.sleep(0.05)
        response = client.post("/documents", json=ARTICLE, headers=AUTH)
        assert response.status_code == 403 and "disabled" in response.json()["detail"]


def test_reads_can_require_a_key_and_keys_are_rate_limited(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, seeds_dir=tmp_path / "none", api_keys=KEY, require_key_for_read=True, rate_limit_per_minute=3
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/documents").status_code in (401, 503)
        deadline = time.monotonic() + 30
        while client.get("/health").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/documents").status_code == 401
        assert client.post("/query", json={"question": "What happened?"}).status_code == 401
        assert client.post("/query/stream", json={"question": "What happened?"}).status_code == 401
        statuses = [client.get("/documents", headers=AUTH).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
        limited = client.get("/documents", headers=AUTH)
        assert int(limited.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    "value",
    [
        "2022-06-13",
        "2022-06-13T10:00:00Z",
        "2022-06-13 10:00",
        " 2022-06-13 ",
        "2022-06-13xyz",
        "2024-02-30",
        "June",
        "20220613",
        "2022-06-13T23:30:00-05:00",
    ],
)
def test_an_upload_and_the_cli_take_the_same_dates(value: str) -> None:
    row = {"id": "d1", "title": "T", "body": "A body.", "published_at": value}
    try:
        cli: object = next(parse_jsonl(json.dumps(row), "f.jsonl")).published_at
    except InvalidDocument:
        cli = "refused"
    try:
        upload: object = JsonlArticleIn.model_validate(row).published_at
    except ValidationError:
        upload = "refused"
    assert cli == upload


def test_another_outlets_copy_is_folded_and_named_wherever_the_story_is_cited(writer: TestClient) -> None:
    from tests.pages import HAMBURG

    body = "\n\n".join(HAMBURG)
    wire = {"id": "wire-ht", "title": "Hamburg rail freight rises", "body": body, "source": "Harbour Times"}
    copy = {"id": "wire-pd", "title": "More freight by night train", "body": body, "source": "Port Daily",
            "url": "https://portdaily.example/wire-pd", "published_at": "2024-10-30"}  # fmt: skip
    assert writer.post("/documents", json=wire, headers=AUTH).json()["added"] == 1
    result = writer.post("/documents", json=copy, headers=AUTH).json()
    assert (result["added"], result["folded"]) == (0, 1)
    assert writer.get("/documents/wire-pd").json()["copy_of"] == "wire-ht"
    also = writer.get("/documents/wire-ht").json()["also_published_by"]
    assert also == [{"article_id": "wire-pd", "source": "Port Daily", "url": copy["url"], "published_at": "2024-10-30"}]
    answer = ask(writer, "How much did rail freight from Hamburg to southern Germany rise?")
    cited = [c for c in answer["citations"] if c["article_id"] in ("wire-ht", "wire-pd")]
    assert cited and {c["article_id"] for c in cited} == {"wire-ht"}
    assert cited[0]["also_published_by"][0]["source"] == "Port Daily"
    chat = writer.post(
        "/v1/chat/completions",
        json={
            "model": "newsrag",
            "messages": [{"role": "user", "content": "How much did Hamburg's rail freight rise?"}],
        },
    ).json()
    assert (
        "also published by [Port Daily](https://portdaily.example/wire-pd)" in chat["choices"][0]["message"]["content"]
    )
    assert writer.delete("/documents/wire-ht", headers=AUTH).status_code == 204
    promoted = writer.get("/documents/wire-pd").json()
    assert promoted["copy_of"] is None and promoted["chunk_count"] > 0
