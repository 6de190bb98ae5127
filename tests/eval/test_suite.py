"""End to end: `rag eval` in process and over HTTP on a few seed questions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eval.report import write_report
from eval.suite import EvalConfig, run_eval
from rag.cli import main
from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.conftest import QUESTIONS, ROOT, SEEDS

FEW = ("seeds-001", "seeds-020", "seeds-064")


def few_questions(tmp_path: Path) -> Path:
    rows = [line for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if json.loads(line)["id"] in FEW]
    path = tmp_path / "few.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_eval_in_process_scores_every_question_and_writes_the_report(
    tmp_path: Path, settings: Settings, pipeline: Pipeline
) -> None:
    config = EvalConfig(questions=few_questions(tmp_path), ablations=("retrieval", "answer"))
    result = run_eval(config, settings, pipeline=pipeline)
    main_run = result["runs"][0]
    assert [s["id"] for s in main_run["scores"]] == list(FEW)
    summary = main_run["summary"]
    assert summary["questions"] == 3 and summary["unanswerable"] == 1
    assert summary["refusal_accuracy"] == 1.0 and summary["false_refusals"] == 0
    assert summary["article_hits@5"] == 1.0
    assert summary["answer_contains"] is not None and summary["cites_gold"] == 1.0
    names = [r["name"] for r in result["runs"]]
    assert "dense only" in names and "BM25 only" in names and "one sentence (max_sentences=1)" in names
    again = run_eval(config, settings, pipeline=pipeline)
    strip = [{k: v for k, v in s.items() if k != "latency_ms"} for s in again["runs"][0]["scores"]]
    assert strip == [{k: v for k, v in s.items() if k != "latency_ms"} for s in main_run["scores"]]

    paths = write_report(result, tmp_path / "out", {"seeds-001": "What did Putin say?"})
    report = paths["markdown"].read_text(encoding="utf-8")
    assert "| dense only |" in report and "![metrics](few.png)" in report
    assert paths["chart"].read_bytes()[:4] == b"\x89PNG"
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["runs"][0]["name"] == main_run["name"]


def test_untouched_questions_are_scored_apart_from_the_run_and_its_halves(
    tmp_path: Path, settings: Settings, pipeline: Pipeline
) -> None:
    untouched = tmp_path / "untouched.jsonl"
    first = (ROOT / "eval" / "questions" / "seeds-untouched.jsonl").read_text(encoding="utf-8").splitlines()[0]
    untouched.write_text(first + "\n", encoding="utf-8")
    config = EvalConfig(questions=few_questions(tmp_path), untouched=untouched)
    run = run_eval(config, settings, pipeline=pipeline)["runs"][0]
    assert run["summary"]["questions"] == 3
    assert run["halves"]["untouched"]["questions"] == 1
    assert run["halves"]["tune"]["questions"] + run["halves"]["check"]["questions"] == 3
    assert [s["split"] for s in run["scores"]] == ["tune", "check", "tune", "untouched"]


def test_eval_over_http_posts_queries_and_scores_the_retrieved_passages(tmp_path: Path, client: TestClient) -> None:
    config = EvalConfig(questions=few_questions(tmp_path), url="http://testserver")
    result = run_eval(config, Settings(_env_file=None), client=client)  # type: ignore[call-arg]
    assert result["mode"] == "http" and len(result["runs"]) == 1
    summary = result["runs"][0]["summary"]
    assert summary["article_hits@5"] == 1.0 and summary["refusal_accuracy"] == 1.0


def test_rag_eval_command_ingests_a_corpus_and_prints_the_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEEDS / "002_353d98a7930780b3.txt", corpus)
    questions = tmp_path / "q.jsonl"
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    keep = [r for r in rows if {e["article_id"] for e in r["evidence"]} == {"002_353d98a7930780b3-1"}][:2]
    questions.write_text("\n".join(json.dumps(r) for r in keep) + "\n", encoding="utf-8")
    monkeypatch.setenv("RAG_SEEDS_DIR", str(corpus))
    args = ["eval", "--questions", str(questions), "--corpus", str(corpus)]
    args += ["--out", str(tmp_path / "out"), "--data-dir", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ours (hybrid, title)" in out and "report:" in out
    assert (tmp_path / "out" / "q.md").is_file() and (tmp_path / "cache" / "corpus" / "title-200-1-pooled").is_dir()


def test_the_date_window_a_dated_question_gets() -> None:
    from datetime import date

    from eval.datasets import date_window
    from rag.models import Filters

    asked = date(2022, 6, 16)
    assert date_window(None, 30, 7) is None and date_window(asked, None, None) is None
    assert date_window(asked, 30) == Filters(date_from=date(2022, 5, 17), date_to=date(2022, 6, 17))
    assert date_window(asked, None, 7) == Filters(prefer_from=date(2022, 6, 9), prefer_to=date(2022, 6, 17))
