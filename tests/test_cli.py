from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from rag.cli import main
from tests.conftest import SEEDS


def test_ingest_then_ask_prints_the_answer_and_numbered_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "002_353d98a7930780b3.txt", corpus)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_SEEDS_DIR", str(corpus))
    assert main(["ingest", str(corpus)]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["ask", "How much gas would the Power of Siberia 2 pipeline deliver each year?"]) == 0
    out = capsys.readouterr().out
    assert "50 billion cubic metres" in out and "Sources:" in out and "[1]" in out
    assert main(["ask", "--json", "Who won the 1966 football World Cup?"]) == 3
    assert json.loads(capsys.readouterr().out)["answerable"] is False


def test_recover_rebuilds_an_index_whose_vector_files_are_ruined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "002_353d98a7930780b3.txt", corpus)
    broken = tmp_path / "broken"
    monkeypatch.setenv("RAG_DATA_DIR", str(broken))
    assert main(["ingest", str(corpus)]) == 0
    for segment in (broken / "chroma").iterdir():
        if segment.is_dir():  # Chroma's HNSW files, where chromadb 1.5's native crashes leave their damage
            for part in segment.iterdir():
                part.write_bytes(b"\xff" * part.stat().st_size)
    capsys.readouterr()
    assert main(["recover", str(broken)]) == 2  # not into the database it reads
    assert "RAG_DATA_DIR to a new folder" in capsys.readouterr().err
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "fresh"))
    assert main(["recover", str(broken)]) == 0
    assert "read 1 articles" in capsys.readouterr().out
    assert main(["ask", "How much gas would the Power of Siberia 2 pipeline deliver each year?"]) == 0
    assert "50 billion cubic metres" in capsys.readouterr().out


def test_cli_reports_bad_paths_and_settings_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    assert main(["ingest", str(tmp_path / "missing.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    monkeypatch.setenv("RAG_TOP_K", "500")
    assert main(["ask", "anything"]) == 2
    assert "configuration error" in capsys.readouterr().err
    monkeypatch.delenv("RAG_TOP_K")
    monkeypatch.setenv("RAG_API_KEYS", "a-long-and-secret-key-0001,short")
    assert main(["ask", "anything"]) == 2
    err = capsys.readouterr().err
    assert "at least 16 characters" in err and "secret-key-0001" not in err and "short" not in err


def test_help_lists_the_commands_the_readme_documents(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for command in ("ingest", "ask", "serve", "eval", "recover"):
        assert command in out and f"rag {command}" in readme


def test_the_readme_states_the_defaults_the_settings_have() -> None:
    """Each plain default in the README's configuration table (a number, or a word in backticks) is the
    setting's own default: the tuned numbers live in rag/policies.py and reach the docs through Settings."""
    from rag.settings import Settings

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    defaults = Settings.model_fields
    checked = 0
    for name, cell in re.findall(r"^\| `RAG_([A-Z_]+)` \| ([^|]+) \|", readme, re.MULTILINE):
        field = defaults.get(name.lower())
        value = cell.strip()
        if field is None or not re.fullmatch(r"`[\w.-]+`|-?\d+(?:\.\d+)?", value):
            continue
        expected = field.default
        shown = value.strip("`")
        if isinstance(expected, bool):
            assert shown == str(expected).lower(), name
        elif isinstance(expected, int | float):
            assert float(shown) == float(expected), name
        else:
            assert shown == str(expected), name
        checked += 1
    assert checked >= 20


def test_ingest_takes_pages_feeds_and_urls_with_a_dry_run_and_a_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import date

    from tests.news_server import NewsSite
    from tests.pages import article_page, section_front

    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAG_FETCH_ALLOW_NETWORKS", "127.0.0.0/8")
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "port.html").write_text(article_page(), encoding="utf-8")
    (pages / "front.html").write_text(section_front(), encoding="utf-8")
    site = NewsSite().start()
    try:
        site.add_story("hamburg", "Hamburg ships more freight by rail", date(2024, 10, 30))
        feed = tmp_path / "harbour.rss"
        feed.write_text(site.feed(), encoding="utf-8")
        sources = [str(pages), str(feed), site.url("/news/hamburg.html"), site.url("/gone.html")]
        assert main(["ingest", "--dry-run", *sources]) == 0
        out = capsys.readouterr().out
        assert "dry run: nothing was stored" in out and "would be added" in out, out
        assert main(["ingest", *sources]) == 0
        out = capsys.readouterr().out
        # The feed's entry and the URL are one page: one article (the second time unchanged).
        assert "2 added" in out and "1 unchanged" in out and "2 skipped" in out, out
        assert f"skipped {pages / 'front.html'}: no article found" in out
        assert f"skipped {site.url('/gone.html')}: the server answered 404" in out
        assert main(["watch", site.url("/feed.xml"), "--every", "1s", "--polls", "2"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0].startswith(site.url("/feed.xml") + ": 1 entries") and "not modified" in out[1], out
    finally:
        site.stop()
