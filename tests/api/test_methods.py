"""HEAD wherever GET is served, and a 405 that names every method the path serves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/health",
        "/documents",
        "/documents/002_353d98a7930780b3-1",
        "/documents/nope",
        "/metrics",
        "/v1/models",
        "/web/app.js",
        "/openapi.json",
    ],
)
def test_head_is_get_without_the_body(client: TestClient, path: str) -> None:
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if "content-length" in got.headers and path != "/metrics":  # metrics count the GET itself
        assert head.headers["content-length"] == got.headers["content-length"]
    assert head.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/documents/upload", "DELETE, GET, HEAD, POST"),  # "upload" is also an article id
        ("PUT", "/documents/some-id", "DELETE, GET, HEAD"),
        ("PATCH", "/query", "POST"),
        ("DELETE", "/health", "GET, HEAD"),
        ("PUT", "/documents", "GET, HEAD, POST"),
    ],
)
def test_a_wrong_method_is_told_every_method_the_path_serves(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.headers["content-type"] == "application/problem+json"
    assert allowed in response.json()["detail"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/documents/"), ("POST", "/query/"), ("GET", "/health/")])
def test_a_trailing_slash_is_a_404_that_says_so_not_a_redirect(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404 and "location" not in response.headers
    assert f"drop the trailing slash: {path[:-1]}" in response.json()["detail"]
    assert "trailing slash" not in client.get("/web/").json()["detail"]  # /web itself is no page either


def test_metrics_label_the_page_files_and_docs_by_route_and_keep_unknown_paths_apart(client: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/web/app.js", f"/web/missing-{id(client)}.js", f"/nope-{id(client)}"):
        client.get(path)
    lines = [line for line in client.get("/metrics").text.splitlines() if line.startswith("newsrag_requests_total")]
    labels = {line.split('route="')[1].split('"')[0] for line in lines}
    assert {"/docs", "/openapi.json", "/web", "unmatched"} <= labels
    assert not any(label.startswith(("/web/", "/nope")) for label in labels)
