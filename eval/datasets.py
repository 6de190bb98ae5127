"""Question sets: the hand-written seed questions and the news-quiz dev set, in one shape.

Both files are read where they live (the news-quiz corpus is never copied into the repo).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from rag.errors import InvalidDocument
from rag.models import Filters

NEWS_QUIZ_DIR = Path("..") / "shared" / "corpora" / "news-quiz"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One piece of support: the article it is in and, for seeds, the verbatim sentence."""

    article_id: str
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Question:
    """A question with everything needed to score an answer to it.

    `facts` are strings a right answer contains (for news-quiz: the one `answer`).
    """

    id: str
    question: str
    answerable: bool
    facts: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = ()
    question_date: date | None = None
    type: str = ""
    reference_answer: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def evidence_articles(self) -> frozenset[str]:
        return frozenset(e.article_id for e in self.evidence)

    @property
    def evidence_texts(self) -> tuple[str, ...]:
        return tuple(e.text for e in self.evidence if e.text)


def date_window(question_date: date | None, days_before: int | None, prefer_days: int | None = None) -> Filters | None:
    """The filter a user asking on `question_date` about "this week" would set.

    Articles from `days_before` days before the question up to the day after it (a story dated
    by its time zone may land a day late); with `prefer_days`, those of the last `prefer_days` days
    rank higher (a soft window). None when the question has no date or no window is wanted.
    """
    if question_date is None or (days_before is None and prefer_days is None):
        return None
    after = question_date + timedelta(days=1)
    return Filters(
        date_from=None if days_before is None else question_date - timedelta(days=days_before),
        date_to=None if days_before is None else after,
        prefer_from=None if prefer_days is None else question_date - timedelta(days=prefer_days),
        prefer_to=None if prefer_days is None else after,
    )


def _parse_row(row: dict[str, object]) -> Question:
    raw_date = row.get("question_date")
    qdate = date.fromisoformat(str(raw_date)) if raw_date else None
    evidence_rows = row.get("evidence") or []
    assert isinstance(evidence_rows, list)
    if "answer" in row:  # news-quiz: one short answer, evidence named by article
        evidence = tuple(Evidence(str(e["article_id"])) for e in evidence_rows)
        return Question(
            id=str(row["id"]),
            question=str(row["question"]),
            answerable=True,
            facts=(str(row["answer"]),),
            evidence=evidence,
            question_date=qdate,
            type="news-quiz",
            reference_answer=str(row["answer"]),
            extra={"choices": row.get("choices") or []},
        )
    evidence = tuple(Evidence(str(e["article_id"]), str(e["text"])) for e in evidence_rows)
    facts = row.get("facts") or []
    assert isinstance(facts, list)
    return Question(
        id=str(row["id"]),
        question=str(row["question"]),
        answerable=bool(row["answerable"]),
        facts=tuple(str(f) for f in facts),
        evidence=evidence,
        question_date=qdate,
        type=str(row.get("type") or ""),
        reference_answer=str(row.get("reference_answer") or ""),
    )


def load_questions(path: Path) -> list[Question]:
    """Questions of a JSONL file in the seeds format or the news-quiz format (told apart per row)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InvalidDocument(f"cannot read questions file {path}: {exc.strerror}") from exc
    out: list[Question] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(_parse_row(json.loads(line)))
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise InvalidDocument(f"{path}:{number}: not a question row ({exc})") from exc
    if not out:
        raise InvalidDocument(f"{path}: no questions")
    return out


@dataclass(frozen=True, slots=True)
class NewsQuiz:
    """Where the news-quiz files are: the corpus to ingest and the dev questions."""

    corpus: Path
    questions: Path


def news_quiz(directory: Path = NEWS_QUIZ_DIR) -> NewsQuiz:
    """The news-quiz corpus and dev questions under `directory`; raises InvalidDocument if absent."""
    corpus, questions = directory / "corpus.jsonl", directory / "queries-dev.jsonl"
    for p in (corpus, questions):
        if not p.is_file():
            raise InvalidDocument(f"news-quiz file not found: {p}")
    return NewsQuiz(corpus, questions)


def window_subset(corpus: Path, questions: list[Question], days: int, out_dir: Path) -> Path:
    """A JSONL corpus of the articles dated within `days` before (to one day after) some question.

    Embedding all of news-quiz takes longer than an evaluation session on a small machine; with a
    date window of at most `days`, retrieval only ever sees these articles, so dense results are the
    same as on the whole corpus (BM25's IDF statistics differ slightly). Evidence articles are always
    kept, as the whole corpus has them. Written outside the repository (`out_dir`, a temp folder).
    """
    dates = [q.question_date for q in questions if q.question_date]
    evidence = {a for q in questions for a in q.evidence_articles}
    target = out_dir / f"{corpus.parent.name}-window{days}" / corpus.name
    target.parent.mkdir(parents=True, exist_ok=True)
    kept: list[str] = []
    with corpus.open(encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            published = str(row.get("published_at") or "")[:10]
            day = date.fromisoformat(published) if published else None
            near = day is not None and any(d - timedelta(days=days) <= day <= d + timedelta(days=1) for d in dates)
            if near or row.get("id") in evidence:
                kept.append(line if line.endswith("\n") else line + "\n")
    text = "".join(kept)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")
    return target
