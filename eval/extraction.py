"""Article extraction quality: `rag eval --extraction DIR` on the article-extraction benchmark.

Each page (`DIR/html/<key>.html.gz`) goes through what `rag ingest` stores for an HTML file (`rag.loading.
html_article`: trafilatura, then the loader's own rules), and the stored body (its body spans, the text that is
chunked and searched) is compared with the hand-checked `articleBody` of `DIR/ground-truth.json`, by the metric
its README defines: word tokens (runs of `\\w`, case kept), 4-token shingles counted as multisets; per page
tp/fp/fn over their sum; precision and recall are means over pages (a page with nothing on either side counts 1),
F1 = 2PR/(P+R) of the means; accuracy is the share of pages whose token lists are identical. A page the loader
refuses ("no article") scores as an empty prediction.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import InvalidDocument
from rag.loading import html_article

_TOKEN = re.compile(r"\w+", re.UNICODE)


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text)
    return Counter(tuple(tokens[i : i + n]) for i in range(max(len(tokens) - n + 1, 0)))


def page_scores(predicted: str, truth: str) -> tuple[float, float, bool]:
    """(precision, recall, identical) of one page by the benchmark's metric."""
    p, t = shingles(predicted), shingles(truth)
    tp = sum((p & t).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    identical = _TOKEN.findall(predicted) == _TOKEN.findall(truth)
    if tp + fp + fn == 0:
        return 1.0, 1.0, identical
    total = tp + fp + fn
    tp_, fp_, fn_ = tp / total, fp / total, fn / total
    precision = tp_ / (tp_ + fp_) if tp_ + fp_ else (1.0 if fn_ == 0 else 0.0)
    recall = tp_ / (tp_ + fn_) if tp_ + fn_ else 1.0
    return precision, recall, identical


@dataclass(slots=True)
class ExtractionResult:
    pages: int = 0
    refused: list[str] = field(default_factory=list)
    precision: float = 0.0
    recall: float = 0.0
    f1: float = 0.0
    accuracy: float = 0.0
    per_page: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.pages} pages: F1 {self.f1:.3f}, precision {self.precision:.3f}, recall {self.recall:.3f}, "
            f"accuracy {self.accuracy:.3f}; refused as no article: {len(self.refused)}"
        )


def evaluate_extraction(directory: Path) -> ExtractionResult:
    truth_file = directory / "ground-truth.json"
    try:
        truth = json.loads(truth_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidDocument(f"{truth_file}: cannot read the ground truth ({exc})") from exc
    result = ExtractionResult()
    precisions, recalls, identical = [], [], 0
    for key, row in sorted(truth.items()):
        page = directory / "html" / f"{key}.html.gz"
        try:
            article = html_article(page.read_bytes(), page.name, url=row.get("url"))
            stored = "\n".join(article.text[s.start : s.end] for s in article.body)
            title = article.title
        except InvalidDocument:
            stored, title = "", ""
            result.refused.append(key)
        p, r, same = page_scores(stored, row.get("articleBody") or "")
        precisions.append(p)
        recalls.append(r)
        identical += same
        result.per_page.append({"page": key, "url": row.get("url"), "title": title, "precision": p, "recall": r})
    result.pages = len(precisions)
    result.precision = sum(precisions) / max(len(precisions), 1)
    result.recall = sum(recalls) / max(len(recalls), 1)
    total = result.precision + result.recall
    result.f1 = 2 * result.precision * result.recall / total if total else 0.0
    result.accuracy = identical / max(result.pages, 1)
    return result
