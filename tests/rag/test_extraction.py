"""HTML pages in: trafilatura reads a publisher's page; what it returns is what is stored."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from rag.errors import InvalidDocument
from rag.extraction import extract_page, headline
from rag.loading import article_id_of_name, corpus_files, html_article, load_file, upload_articles
from tests.pages import PARAGRAPHS, article_page, paywall_stub, section_front


def test_a_page_gives_its_article_and_metadata_without_the_furniture() -> None:
    page = extract_page(article_page().encode())
    assert page.title == "Rotterdam port traffic falls again as ships avoid Red Sea"
    assert page.site == "Harbour Times"
    assert page.author == "Anna de Vries"
    assert page.published_at == date(2024, 10, 29)
    assert page.url == "https://harbourtimes.example/news/rotterdam-port-traffic"
    assert page.text.splitlines() == list(PARAGRAPHS)
    for furniture in ("cookies", "Share on", "Related stories", "First!", "All rights reserved"):
        assert furniture not in page.text


@pytest.mark.parametrize("page", [section_front(), paywall_stub(), "", "<html><body></body></html>", "not html"])
def test_a_page_with_no_article_is_refused_with_a_reason(page: str) -> None:
    with pytest.raises(InvalidDocument, match="no article found on this page"):
        extract_page(page)


def test_an_article_from_a_page_indexes_its_extracted_text() -> None:
    article = html_article(article_page().encode(), "rotterdam-port.html")
    assert article.id == "rotterdam-port"
    assert (article.source, article.author, article.source_file) == (
        "Harbour Times",
        "Anna de Vries",
        "rotterdam-port.html",
    )
    assert article.url == "https://harbourtimes.example/news/rotterdam-port-traffic"
    # One body span over the whole extracted text: a citation's offsets land on the sentence it quotes.
    body = article.text[article.body[0].start : article.body[-1].end]
    assert body == "\n".join(PARAGRAPHS)
    quote = "Volumes dropped 4.2 percent from a year earlier"
    start = article.text.index(quote)
    assert article.text[start : start + len(quote)] == quote


def test_a_gzipped_page_and_a_given_id() -> None:
    raw = gzip.compress(article_page().encode())
    assert html_article(raw, "page.html.gz").id == "page"
    assert html_article(raw, "page.html.gz", article_id="port-2024").id == "port-2024"
    with pytest.raises(InvalidDocument, match="not a gzip file"):
        html_article(b"<html></html>", "page.html.gz")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.html", "a"), ("A Story (2).htm", "A-Story-2"), ("x.html.gz", "x"), ("news.2024.HTML", "news.2024")],
)
def test_an_id_is_the_file_name_without_its_extensions(name: str, expected: str) -> None:
    assert article_id_of_name(name) == expected


def test_pages_in_a_folder_are_ingested_beside_text(tmp_path: Path) -> None:
    (tmp_path / "one.html").write_text(article_page(), encoding="utf-8")
    (tmp_path / "two.htm.gz").write_bytes(gzip.compress(article_page(title="Hamburg ships more by rail").encode()))
    (tmp_path / "notes.md").write_text("not a corpus file", encoding="utf-8")
    files = corpus_files([tmp_path])
    assert [f.name for f in files] == ["one.html", "two.htm.gz"]
    assert [load_file(f)[0].title for f in files] == [
        "Rotterdam port traffic falls again as ships avoid Red Sea",
        "Hamburg ships more by rail",
    ]


def test_an_uploaded_page_is_one_article_held_to_the_size_limit() -> None:
    [article] = upload_articles(article_page().encode(), "port.html", max_chars=100_000)
    assert article.id == "port"
    with pytest.raises(InvalidDocument, match="longer than 100 characters"):
        upload_articles(article_page().encode(), "port.html", max_chars=100)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Ships avoid the Red Sea | Harbour Times", "Ships avoid the Red Sea"),
        ("Ships avoid the Red Sea - Business - Harbour Times", "Ships avoid the Red Sea - Business"),
        ("Harbour Times", ""),
        ("Ships avoid the Red Sea - harbourtimes", "Ships avoid the Red Sea"),
        ("Red Sea - a detour that costs ten days", "Red Sea - a detour that costs ten days"),
    ],
)
def test_a_headline_loses_the_site_name_pages_append(title: str, expected: str) -> None:
    assert headline(title, "Harbour Times", "www.harbourtimes.example") == expected
