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
from typing import Any

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


VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


def _in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return box is not None and box["y"] >= -1 and box["y"] + min(box["height"], 40) <= viewport["height"] + 1


def _ask(page: Any, question: str, n: int) -> Any:
    page.fill("#question", question)
    page.click("#send")
    turn = page.locator(".turn").nth(n)
    turn.locator(".meta").wait_for()
    return turn


@pytest.mark.parametrize("device", list(VIEWPORTS))
def test_the_page_works_on_a_phone_and_a_desktop_in_a_long_chat(page_url: str, device: str) -> None:
    """390×844 and 1280×800: an early [n] brings its passage into view, the passage fits the screen and the Ask
    box stays on it, a paste over the limit is said so (not cut), one refusal, source names without file names.
    A failing check saves a screenshot under test-output/."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        page = browser.new_page(viewport=VIEWPORTS[device])
        page.set_default_timeout(60_000)
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            page.goto(page_url)
            first = _ask(page, PUTIN, 0)
            for n, question in enumerate(
                [
                    "How much gas a year would the Power of Siberia 2 pipeline deliver?",
                    "Where did Xi and Putin meet in September 2022?",
                    "Which Chinese city was Putin due to visit for the opening of the 8th Russia-China Expo?",
                ],
                start=1,
            ):
                _ask(page, question, n)
            assert _in_view(page, "#ask"), "the Ask box scrolled away"

            first.locator("button.cite").first.click()
            assert page.locator("#source").is_visible()
            assert _in_view(page, "#source-passage"), "the cited passage opened off-screen"
            source_box = page.locator("#source").bounding_box()
            if device == "desktop":
                assert source_box is not None and source_box["height"] <= VIEWPORTS[device]["height"]
                assert _in_view(page, "#ask")
            assert ".txt" not in page.locator("#source-meta").inner_text()
            assert page.evaluate("citationMeta({source: 'www.cnn.com', published_at: '2022-06-13'})") == (
                "www.cnn.com · 2022-06-13"
            )
            assert page.evaluate("citationMeta({source: '000_26e4b23e68a8d043.txt', published_at: null})") == ""

            page.fill("#question", "Why? " * 300)  # 1,500 characters, as a paste
            assert page.locator("#too-long").is_visible() and "1499" in page.locator("#too-long").inner_text()
            assert page.locator("#send").is_disabled()
            page.fill("#question", "")
            assert not page.locator("#too-long").is_visible()

            refused = _ask(page, UNANSWERABLE, 4)
            assert refused.locator(".unanswerable").count() == 1
            assert "do not answer" not in refused.inner_text()  # not the service's wording a second time
        except AssertionError:
            out = ROOT / "test-output"
            out.mkdir(exist_ok=True)
            page.screenshot(path=str(out / f"page-{device}-failed.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert problems == [], problems
