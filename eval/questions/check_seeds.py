#!/usr/bin/env python3
"""Validate the hand-made seed question set (eval/questions/seeds.jsonl).

Usage: python eval/questions/check_seeds.py [PATH]   (seeds.jsonl or seeds-untouched.jsonl)

Checks, for every line of PATH (default: seeds.jsonl next to this script):
  * valid JSON object with exactly the expected fields, in the expected order;
  * unique ids ("seeds-NNN") and unique questions;
  * a known question type; answerable is true unless type is "unanswerable";
  * answerable questions: >= 1 evidence item and 1-3 facts;
    unanswerable questions: no facts, no evidence, the stock reference answer;
  * each evidence text occurs verbatim in the named article's line range of its
    seed file (seeds/<stem>.txt under the repo root, falling back to
    /work/shared/seeds), ignoring boilerplate lines (VIDEO, READ MORE, photo
    captions, the duplicated pull quote, ...);
  * each fact occurs (case-insensitively) in at least one of its evidence texts;
  * multi-article questions cite evidence from at least two articles;
  * the whole set has >= 45 questions, >= 8 of them unanswerable.
Prints a summary by type and exits non-zero on any problem. Stdlib only.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

FIELDS = ["id", "question", "question_date", "answerable", "reference_answer", "facts", "evidence", "type"]
TYPES = ["who-said-what", "number", "place-date", "multi-article", "paraphrase", "unanswerable"]
# The untouched set (seeds-untouched.jsonl) asks in phrasings the first set lacks.
UNTOUCHED_TYPES = ["which", "list", "how-long", "date", "who-said", "conflicting"]
UNANSWERABLE_REFERENCE = "The sources do not say."
MIN_QUESTIONS = {"seeds.jsonl": 45, "seeds-untouched.jsonl": 40}
MIN_UNANSWERABLE = {"seeds.jsonl": 8, "seeds-untouched.jsonl": 6}
FIRST_QUESTION = "What did Putin say about China's 12-point plan?"

# article id -> (file stem, first line, last line); lines are 1-based and
# inclusive, None as last line means "to the end of the file".
ARTICLES = {
    "000_26e4b23e68a8d043-1": ("000_26e4b23e68a8d043", 1, None),
    "001_7906c61ad8bc5696-1": ("001_7906c61ad8bc5696", 1, 28),
    "001_7906c61ad8bc5696-2": ("001_7906c61ad8bc5696", 31, 60),
    "001_7906c61ad8bc5696-3": ("001_7906c61ad8bc5696", 66, 72),
    "002_353d98a7930780b3-1": ("002_353d98a7930780b3", 1, None),
    "003_99b702be79d94449-1": ("003_99b702be79d94449", 1, None),
    "004_03952a0ed07344a4-1": ("004_03952a0ed07344a4", 1, None),
}

# Lines that must never serve as evidence, per file (1-based): the pull quote
# that duplicates line 16, the doubled photo caption and the link list.
EXCLUDED_LINES = {
    "001_7906c61ad8bc5696": {1, 48, 49, 61, 62, 63, 64, 65},
}
BOILERPLATE_EXACT = {"VIDEO", "READ MORE", "Keep reading", "Source link", "(With input from Xinhua)"}
BOILERPLATE_RE = re.compile(r"^(\d{1,2}:\d{2}|SEE ALSO:.*|list of \d+ items.*)$")

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED_DIRS = [REPO_ROOT / "seeds", Path("/work/shared/seeds")]
ID_RE = re.compile(r"^seeds-\d{3,}$")


def is_boilerplate(line: str) -> bool:
    s = line.strip()
    return not s or s in BOILERPLATE_EXACT or bool(BOILERPLATE_RE.match(s))


def seed_path(stem: str) -> Path | None:
    for d in SEED_DIRS:
        p = d / f"{stem}.txt"
        if p.is_file():
            return p
    return None


_article_cache: dict[str, str | None] = {}


def article_text(article_id: str) -> str | None:
    """Usable text of an article: its non-boilerplate lines joined by newlines."""
    if article_id in _article_cache:
        return _article_cache[article_id]
    stem, first, last = ARTICLES[article_id]
    path = seed_path(stem)
    if path is None:
        _article_cache[article_id] = None
        return None
    lines = path.read_text(encoding="utf-8").split("\n")
    last = len(lines) if last is None else last
    excluded = EXCLUDED_LINES.get(stem, set())
    kept = [
        lines[i - 1]
        for i in range(first, min(last, len(lines)) + 1)
        if i not in excluded and not is_boilerplate(lines[i - 1])
    ]
    text = "\n".join(kept)
    _article_cache[article_id] = text
    return text


def check_record(rec: object, where: str, errors: list[str]) -> None:
    def err(msg: str) -> None:
        errors.append(f"{where}: {msg}")

    if not isinstance(rec, dict):
        err("not a JSON object")
        return
    if list(rec.keys()) != FIELDS:
        err(f"fields must be exactly {FIELDS} in that order, got {list(rec.keys())}")
        if set(rec.keys()) != set(FIELDS):
            return
    qid, question, qdate = rec["id"], rec["question"], rec["question_date"]
    answerable, ref, facts = rec["answerable"], rec["reference_answer"], rec["facts"]
    evidence, qtype = rec["evidence"], rec["type"]

    if not isinstance(qid, str) or not ID_RE.match(qid):
        err(f"bad id {qid!r}")
    if not isinstance(question, str) or not question.strip():
        err("question must be a non-empty string")
    if qdate is not None and not isinstance(qdate, str):
        err("question_date must be null or a string")
    if not isinstance(answerable, bool):
        err("answerable must be a boolean")
    if not isinstance(ref, str) or not ref.strip():
        err("reference_answer must be a non-empty string")
    if qtype not in TYPES + UNTOUCHED_TYPES:
        err(f"unknown type {qtype!r}")
    if not isinstance(facts, list) or not all(isinstance(f, str) and f.strip() for f in facts):
        err("facts must be a list of non-empty strings")
        facts = []
    if not isinstance(evidence, list):
        err("evidence must be a list")
        evidence = []

    if answerable is False or qtype == "unanswerable":
        if not (answerable is False and qtype == "unanswerable"):
            err("answerable=false and type=unanswerable must go together")
        if facts:
            err("unanswerable question must have no facts")
        if evidence:
            err("unanswerable question must have no evidence")
        if ref != UNANSWERABLE_REFERENCE:
            err(f"unanswerable reference_answer must be {UNANSWERABLE_REFERENCE!r}")
        return

    if not evidence:
        err("answerable question needs at least one evidence item")
    if not 1 <= len(facts) <= 3:
        err(f"answerable question needs 1-3 facts, has {len(facts)}")

    texts: list[str] = []
    articles: set[str] = set()
    for j, ev in enumerate(evidence):
        ew = f"evidence[{j}]"
        if not isinstance(ev, dict) or list(ev.keys()) != ["article_id", "text"]:
            err(f"{ew} must be an object with exactly article_id, text")
            continue
        aid, text = ev["article_id"], ev["text"]
        if aid not in ARTICLES:
            err(f"{ew} unknown article_id {aid!r}")
            continue
        if not isinstance(text, str) or not text.strip():
            err(f"{ew} text must be a non-empty string")
            continue
        if text != text.strip():
            err(f"{ew} text has leading/trailing whitespace")
        body = article_text(aid)
        if body is None:
            err(f"{ew} seed file for {aid} not found in {[str(d) for d in SEED_DIRS]}")
            continue
        if text not in body:
            err(
                f"{ew} text not found in {aid} (outside its line range, in a "
                f"boilerplate line, or not verbatim): {text[:80]!r}"
            )
            continue
        texts.append(text)
        articles.add(aid)

    for fact in facts:
        if not any(fact.lower() in t.lower() for t in texts):
            err(f"fact {fact!r} not found in any of its evidence texts")

    if qtype == "multi-article" and len(articles) < 2:
        err("multi-article question must cite evidence from at least two articles")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "seeds.jsonl"
    if not path.is_file():
        print(f"ERROR: {path} not found")
        return 1

    errors: list[str] = []
    records: list[dict] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"line {n}: invalid JSON ({e})")
            continue
        where = f"line {n}"
        if isinstance(rec, dict) and isinstance(rec.get("id"), str):
            where += f" ({rec['id']})"
        check_record(rec, where, errors)
        if isinstance(rec, dict):
            records.append(rec)

    ids = Counter(r.get("id") for r in records)
    for qid, c in ids.items():
        if c > 1:
            errors.append(f"duplicate id {qid!r} ({c} times)")
    questions = Counter(str(r.get("question", "")).strip().lower() for r in records)
    for q, c in questions.items():
        if c > 1:
            errors.append(f"duplicate question {q!r} ({c} times)")
    first = [r for r in records if r.get("id") == "seeds-001"]
    if first and first[0].get("question") != FIRST_QUESTION:
        errors.append(f"seeds-001 must ask {FIRST_QUESTION!r}")

    types = Counter(r.get("type") for r in records)
    n_unans = sum(1 for r in records if r.get("answerable") is False)
    least, least_unanswerable = MIN_QUESTIONS.get(path.name, 1), MIN_UNANSWERABLE.get(path.name, 0)
    if len(records) < least:
        errors.append(f"only {len(records)} questions, need at least {least}")
    if n_unans < least_unanswerable:
        errors.append(f"only {n_unans} unanswerable questions, need at least {least_unanswerable}")

    cited = Counter(ev.get("article_id") for r in records for ev in (r.get("evidence") or []) if isinstance(ev, dict))
    print(f"{path}: {len(records)} questions ({len(records) - n_unans} answerable, {n_unans} unanswerable)")
    print("by type:")
    known = TYPES + UNTOUCHED_TYPES
    for t in [t for t in known if types.get(t)] + sorted(k for k in types if k not in known and isinstance(k, str)):
        print(f"  {t:<15} {types.get(t, 0)}")
    print("evidence items by article:")
    for aid in ARTICLES:
        print(f"  {aid:<25} {cited.get(aid, 0)}")

    if errors:
        print(f"\nFAILED: {len(errors)} problem(s)")
        for e in errors:
            print(f"  - {e}")
        return 1
    print("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
