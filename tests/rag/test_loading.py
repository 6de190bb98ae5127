from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest

from rag.errors import InvalidDocument
from rag.loading import corpus_files, load_file, load_jsonl, read_text, split_articles
from tests.conftest import NEWS_QUIZ, SEEDS

EXPECTED_TITLES = {
    # "Newsman: " is the site's name fused onto the headline; "Putin to Xi:" and "Double Trouble:" are kickers.
    "000_26e4b23e68a8d043-1": "Chinese President Xi Jinping and Russian President Vladimir Putin",
    "001_7906c61ad8bc5696-1": "Putin to Xi: Russia seeks to strengthen military ties with China",
    "001_7906c61ad8bc5696-2": "Xi reiterates China's objective stance on Ukraine in talks with Putin",
    "001_7906c61ad8bc5696-3": "Putin invites Xi for state visit",
    "002_353d98a7930780b3-1": "Russia-China ties enter ‘new era’ as Xi meets Putin in Moscow",
    "003_99b702be79d94449-1": "Double Trouble: Vladimir Putin-Xi Jinping sitdown",
    "004_03952a0ed07344a4-1": "Xi and Putin Agree to Further Deepen Economic and Military Ties",
}


def test_a_label_fused_onto_a_headline_is_dropped_only_when_the_article_never_uses_it() -> None:
    from rag.loading import clean_title

    assert clean_title("Newsman: Xi and Putin meet in Moscow again", "The two leaders met.") == (
        "Xi and Putin meet in Moscow again"
    )
    assert clean_title("Ukraine: Zelensky visits the front line", "Ukraine's president went east.").startswith(
        "Ukraine:"
    )
    assert clean_title("Putin to Xi: ties are the best in history", "").startswith("Putin to Xi:")
    assert clean_title("Photos: Serena Williams' final act", "She played.") == "Serena Williams' final act"
    assert clean_title("Update: Jackpot", "No word of it.") == "Update: Jackpot"  # too short to be a headline after


def all_seed_articles():
    return [a for path in corpus_files([SEEDS]) for a in load_file(path)]


def body_text(article) -> str:
    return "\n".join(article.text[s.start : s.end] for s in article.body)


def test_seed_files_split_into_their_articles() -> None:
    articles = all_seed_articles()
    assert [a.id for a in articles] == list(EXPECTED_TITLES)
    for article in articles:
        assert article.title.startswith(EXPECTED_TITLES[article.id])


def test_article_text_is_an_exact_slice_of_its_file() -> None:
    for article in all_seed_articles():
        file_text = read_text(SEEDS / article.source_file)
        assert file_text[article.source_start : article.source_end] == article.text
        for span in article.body:
            assert 0 <= span.start < span.end <= len(article.text)


def test_boilerplate_is_left_out_of_article_bodies() -> None:
    bodies = {a.id: body_text(a) for a in all_seed_articles()}
    joined = "\n".join(bodies.values())
    for junk in (
        "READ MORE",
        "VIDEO",
        "01:37",
        "Keep reading",
        "list of 4 items",
        "SEE ALSO",
        "Source link",
        "(With input from Xinhua)",
    ):
        assert junk not in joined, junk
    assert "December 30, 2022. /Xinhua" not in joined  # the photo caption printed twice
    # The pull quote before the first headline is dropped, its copy inside the story kept once.
    quote = "“China is ready to work with Russia and all progressive forces"
    assert bodies["001_7906c61ad8bc5696-1"].count(quote) == 1
    first = next(a for a in all_seed_articles() if a.id == "001_7906c61ad8bc5696-1")
    assert first.source_start > 0


def test_articles_keep_their_section_headings_and_last_lines() -> None:
    bodies = {a.id: body_text(a) for a in all_seed_articles()}
    assert "Gas, Internet" in bodies["002_353d98a7930780b3-1"]
    assert bodies["001_7906c61ad8bc5696-3"].endswith('Samarkand, Uzbekistan."')
    assert bodies["001_7906c61ad8bc5696-2"].startswith("Chinese President Xi Jinping on Friday reiterated")


def test_split_detects_a_new_article_only_after_a_section_break() -> None:
    text = "First headline\nA body line.\nA section heading\nMore body.\nREAD MORE\nSecond headline\nIts body."
    articles = split_articles(text, "f", "f.txt")
    assert [a.title for a in articles] == ["First headline", "Second headline"]
    assert "A section heading" in articles[0].text


def test_jsonl_corpus_loads_fields_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    rows = [
        {
            "id": "a1",
            "title": "Quake hits",
            "source": "example.com",
            "published_at": "2022-06-22T08:00:00Z",
            "url": "https://example.com/a1",
            "body": "A magnitude 5.9 earthquake hit.\n\nMany were hurt.",
        },
        {"id": "a2", "title": "No date", "source": "example.com", "published_at": None, "url": None, "body": "Text."},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    first, second = list(load_jsonl(path))
    assert (first.id, first.published_at, first.source) == ("a1", date(2022, 6, 22), "example.com")
    assert first.text == rows[0]["body"]
    assert second.published_at is None


def test_jsonl_with_a_broken_line_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "title": "t", "body": "b."}\n{not json\n', encoding="utf-8")
    with pytest.raises(InvalidDocument, match="line 2"):
        list(load_jsonl(path))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", None, "id: must be a non-empty string"),
        ("url", 123, "url: must be a string, not int"),
        ("title", ["a", "b"], "title: must be a string, not list"),
        ("published_at", "2024-02-30", "published_at: '2024-02-30' is not a date"),
        ("published_at", "2022-06-13xyz", "published_at: '2022-06-13xyz' is not a date"),
    ],
)
def test_jsonl_fields_of_the_wrong_type_are_refused_not_stringified(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = tmp_path / "typed.jsonl"
    path.write_text(json.dumps({"id": "a", "title": "t", "body": "A body.", field: value}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidDocument, match=f"typed.jsonl line 1: {re.escape(message)}"):
        list(load_jsonl(path))


def test_unsupported_or_missing_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    with pytest.raises(InvalidDocument):
        corpus_files([tmp_path / "x.pdf"])
    with pytest.raises(InvalidDocument):
        corpus_files([tmp_path / "missing.txt"])


@pytest.mark.skipif(not (NEWS_QUIZ / "corpus.jsonl").is_file(), reason="news-quiz corpus not beside the repo")
def test_news_quiz_corpus_loads_with_offsets() -> None:
    articles = list(load_jsonl(NEWS_QUIZ / "corpus.jsonl"))
    assert len(articles) == 1284
    assert all(a.body and a.title for a in articles)
    assert sum(a.published_at is not None for a in articles) > 1200
