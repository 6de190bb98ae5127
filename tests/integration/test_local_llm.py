"""Opt-in: a real OpenAI-compatible server (RAG_TEST_LLM_BASE_URL, e.g. scripts/local-llm.sh).

Run: RAG_TEST_LLM_BASE_URL=http://127.0.0.1:8081/v1 python -m pytest -m integration -s
(RAG_TEST_LLM_MODEL, default gemma-3-270m; RAG_TEST_LLM_SYSTEM_ROLE, default false as Gemma has none.)
A small model may answer badly; the contract holds either way: a verified, cited LLM answer, or the
extractive answer with a warning. What it answered is written to test-output/integration-llm.json.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import pytest

from rag.pipeline import Pipeline
from rag.settings import Settings
from tests.conftest import ROOT, make_llm_settings, with_llm

BASE_URL = os.environ.get("RAG_TEST_LLM_BASE_URL")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not BASE_URL, reason="set RAG_TEST_LLM_BASE_URL to an OpenAI-compatible server"),
]

QUESTIONS = [
    "What did Putin say about China's 12-point plan?",
    "Where did Xi and Putin meet in September 2022?",
    "Who won the 2018 FIFA World Cup final?",
]


def test_a_real_llm_answers_with_verified_citations_or_falls_back(
    settings: Settings, pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    llm_settings = make_llm_settings(
        settings.data_dir,
        BASE_URL or "",
        llm_model=os.environ.get("RAG_TEST_LLM_MODEL", "gemma-3-270m"),
        llm_timeout=float(os.environ.get("RAG_TEST_LLM_TIMEOUT", "120")),
        llm_system_role=os.environ.get("RAG_TEST_LLM_SYSTEM_ROLE", "false") != "false",
    )
    llm = with_llm(pipeline, llm_settings)
    results = []
    for question in QUESTIONS:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="newsrag.answering"):
            answer = llm.ask(question)
        rejected = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected LLM reply")]
        results.append(
            {
                "question": question,
                "mode": answer.mode,
                "answerable": answer.answerable,
                "answer": answer.text,
                "citations": [{"n": c.n, "article_id": c.article_id, "quote": c.quote} for c in answer.citations],
                "flags": [asdict(f) for f in answer.flags],
                "warnings": answer.warnings,
                "rejected_reply": rejected[0] if rejected else None,
                "timings_ms": answer.timings_ms,
            }
        )
        print(json.dumps(results[-1], indent=2, ensure_ascii=False))
        if answer.mode == "llm":
            assert not answer.warnings
            for c in answer.citations:
                assert f"[{c.n}]" in answer.text
                assert c.passage[c.quote_start - c.start : c.quote_end - c.start] == c.quote
        else:
            assert answer.warnings and "LLM answer unavailable" in answer.warnings[0]
    out = Path(ROOT / "test-output")
    out.mkdir(exist_ok=True)
    (out / "integration-llm.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
