"""The page at / in a real headless Chromium: ask, watch the answer stream, open a citation, follow up.

Needs Debian's /usr/bin/chromium (driven by PyPI playwright; `playwright install` is never used, it
downloads a browser). CI installs it in .ci/run; without it this test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.main import create_app
from bench.service import serving_in_thread
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PUTIN = "What did Putin say about China's 12-point plan?"
UNANSWERABLE = "What is a good recipe for beef stroganoff?"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        # CI installs chromium in .ci/run, so there a missing browser is a failure, not a skip.
        not CHROMIUM.exists() and os.environ.get("CI") != "true",
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@pytest.fixture(scope="module")
def page_url(settings: Settings, pipeline: Pipeline) -> Iterator[str]:
    with serving_in_thread(create_app(settings, pipeline=pipeline), timeout=60) as url:
        yield url


def test_ask_open_a_citation_and_follow_up_in_a_browser(page_url: str, pipeline: Pipeline, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    quote = pipeline.ask(PUTIN).citations[0].quote
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            started = time.perf_counter()
            page.goto(page_url)

            page.fill("#question", PUTIN)
            page.click("#send")
            first = page.locator(".turn").nth(0)
            first.locator(".meta").wait_for()
            assert "basis" in first.locator(".answer").inner_text()

            first.locator("button.cite").first.click()
            assert page.locator("#source").is_visible()
            assert page.locator("#source-passage mark").inner_text() == quote
            assert page.locator("#source-title").inner_text()

            page.fill("#question", "and what did Xi say about it?")
            page.press("#question", "Enter")
            second = page.locator(".turn").nth(1)
            second.locator(".meta").wait_for()
            assert "What did Xi say about China's 12-point plan?" in second.locator(".rewritten").inner_text()
            assert "Xi" in second.locator(".answer").inner_text()
            second.locator("button.cite").first.click()
            assert page.locator("#source-passage mark").inner_text()

            page.fill("#question", UNANSWERABLE)
            page.click("#send")
            third = page.locator(".turn").nth(2)
            third.locator(".meta").wait_for()
            assert "sources do not say" in third.locator(".unanswerable").inner_text()
            elapsed = time.perf_counter() - started

            shot = tmp_path / "chat-page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    shutil.copy(shot, out / shot.name)
    assert problems == [], problems  # no script errors, no CSP violations
    assert elapsed < 60
