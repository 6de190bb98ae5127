from __future__ import annotations

from fastapi.testclient import TestClient


def test_documents_lists_the_ingested_articles_with_chunk_counts(client: TestClient) -> None:
    body = client.get("/documents").json()
    assert body["count"] == 7
    ids = [d["id"] for d in body["documents"]]
    assert "001_7906c61ad8bc5696-3" in ids
    assert all(d["chunk_count"] >= 1 and d["title"] for d in body["documents"])
