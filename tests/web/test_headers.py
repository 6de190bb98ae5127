"""The page's security headers on every way to reach it and its files (no browser needed)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.routes.web import SECURITY_HEADERS


@pytest.mark.parametrize("path", ["/", "/web/index.html", "/web/app.js", "/web/style.css"])
def test_the_page_and_its_files_carry_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (path, name)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
