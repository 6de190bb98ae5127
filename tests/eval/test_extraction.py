from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eval.extraction import evaluate_extraction, page_scores
from tests.conftest import ROOT
from tests.pages import PARAGRAPHS, article_page, section_front

EXTRACTION = ROOT.parent / "shared" / "corpora" / "article-extraction"


def test_the_metric_counts_shingles() -> None:
    assert page_scores("a b c d e", "a b c d e") == (1.0, 1.0, True)
    precision, recall, same = page_scores("a b c d e x y z w", "a b c d e")
    assert (recall, same) == (1.0, False) and precision == pytest.approx(2 / 6)
    assert page_scores("", "") == (1.0, 1.0, True)
    assert page_scores("", "a b c d")[1] == 0.0


def test_a_refused_page_scores_as_empty(tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "good.html.gz").write_bytes(gzip.compress(article_page().encode()))
    (tmp_path / "html" / "front.html.gz").write_bytes(gzip.compress(section_front().encode()))
    truth = {
        "good": {"articleBody": "\n\n".join(PARAGRAPHS)},
        "front": {"articleBody": "An article was here once, long ago."},
    }
    (tmp_path / "ground-truth.json").write_text(json.dumps(truth), encoding="utf-8")
    result = evaluate_extraction(tmp_path)
    assert result.pages == 2 and result.refused == ["front"]
    assert result.recall == pytest.approx(0.5)
    assert result.precision == pytest.approx(0.5)  # the good page 1.0, the refused one nothing right


@pytest.mark.skipif(
    not (EXTRACTION / "ground-truth.json").is_file(), reason="article-extraction corpus not beside the repo"
)
def test_what_ingest_stores_meets_the_extraction_targets() -> None:
    result = evaluate_extraction(EXTRACTION)
    assert result.pages == 181
    assert result.f1 >= 0.95 and result.precision >= 0.93, result.summary()
