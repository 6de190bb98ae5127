"""The `rag` command: ingest | ask | serve | eval | recover. Each parses, builds the pipeline, and calls it.

The command sits above the packages it drives: `serve` imports `api` and `eval` imports `eval` inside their
functions, never at the top, so that the library (`rag`) does not depend on the layers built on it and
`rag ingest` or `rag ask` do not pay for loading FastAPI, uvicorn and matplotlib.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from rag.errors import RagError
from rag.models import IngestReport
from rag.settings import Settings

if TYPE_CHECKING:
    from rag.feeds import PollReport

UNTOUCHED_SEEDS = "eval/questions/seeds-untouched.jsonl"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Question answering over news articles, with citations.")
    sub = parser.add_subparsers(dest="command", required=True)

    ingest = sub.add_parser(
        "ingest", help="add articles to the index: files, folders, article pages, feeds, or URLs of either"
    )
    ingest.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="a .txt, .jsonl or .html(.gz) file, a folder of them, a feed file (.xml, .rss, .atom), or an "
        "http(s) URL of an article page or an RSS/Atom feed (default: the seeds folder)",
    )
    ingest.add_argument(
        "--dry-run", action="store_true", help="fetch and read everything, say what would be stored, store nothing"
    )

    watch = sub.add_parser("watch", help="keep polling RSS/Atom feeds into the index (as RAG_FEEDS does in serve)")
    watch.add_argument("feeds", nargs="+", metavar="FEED_URL")
    watch.add_argument(
        "--every", type=_duration, default=900.0, metavar="DURATION", help="time between polls: 90s, 15m, 2h (15m)"
    )
    watch.add_argument("--polls", type=int, default=None, metavar="N", help="stop after N rounds (default: never)")

    ask = sub.add_parser("ask", help="answer one question and print its numbered sources")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=None, help="passages to retrieve")
    ask.add_argument("--json", action="store_true", help="print the full answer as JSON")

    serve = sub.add_parser("serve", help="start the HTTP service (ingests the seeds on first start)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)

    recover = sub.add_parser(
        "recover", help="rebuild the index from the article rows of an embedded Chroma database that no longer opens"
    )
    recover.add_argument("source", type=Path, help="the broken data dir (or its chroma folder, or chroma.sqlite3)")

    ev = sub.add_parser("eval", help="score answers, citations and retrieval on a question set; write a report")
    ev.add_argument("--questions", type=Path, default=None, help="JSONL questions (default: the seed questions)")
    ev.add_argument(
        "--untouched",
        type=Path,
        default=None,
        metavar="PATH",
        help="questions no setting is chosen on, scored apart from the halves (default with the seed questions: "
        "eval/questions/seeds-untouched.jsonl; 'none' to skip)",
    )
    ev.add_argument("--corpus", type=Path, action="append", default=[], help="file or folder to ingest (repeatable)")
    ev.add_argument(
        "--news-quiz",
        type=Path,
        nargs="?",
        const=Path("../shared/corpora/news-quiz"),
        default=None,
        metavar="DIR",
        help="use DIR/queries-dev.jsonl and DIR/corpus.jsonl (default DIR: ../shared/corpora/news-quiz)",
    )
    ev.add_argument(
        "--extraction",
        type=Path,
        nargs="?",
        const=Path("../shared/corpora/article-extraction"),
        default=None,
        metavar="DIR",
        help="score HTML extraction on DIR/html and DIR/ground-truth.json (default DIR: "
        "../shared/corpora/article-extraction) instead of answering questions",
    )
    ev.add_argument(
        "--subset-days",
        type=int,
        default=None,
        metavar="N",
        help="ingest only the articles dated within N days before a question (a JSONL corpus; written to a temp dir)",
    )
    ev.add_argument("--url", default=None, help="evaluate a running service (POST /query) instead of in process")
    ev.add_argument("--out", type=Path, default=Path("eval/results"), help="where the report goes")
    ev.add_argument("--data-dir", type=Path, default=Path("eval/.cache"), help="where cached indexes live")
    ev.add_argument(
        "--window-days",
        type=int,
        default=-1,
        help="dated questions: only articles from this many days before to one day after, sent as a filter (-1: none)",
    )
    ev.add_argument(
        "--prefer-days",
        type=int,
        default=-1,
        help="dated questions: rank articles of this many days before higher, sent as a filter (-1: none)",
    )
    ev.add_argument(
        "--no-as-of",
        action="store_true",
        help="ask dated questions today, not as of their date (the service then cannot read their 'this week')",
    )
    ev.add_argument(
        "--ablations",
        nargs="?",
        const="all",
        default="",
        metavar="GROUPS",
        help="also run ablations: all, or a comma list of retrieval,prefix,answer,window,baseline",
    )
    return parser


class ProgressBar:
    """A tqdm bar on stderr, driven by `(done, total)` or `(done, total, label)` callbacks: one bar per label
    (an eval run's targets), closed when done. Silent when stderr is not a terminal (CI logs, pipes)."""

    def __init__(self, unit: str) -> None:
        self._unit = unit
        self._bar: Any = None
        self._label: str | None = None

    def __call__(self, done: int, total: int, label: str = "") -> None:
        from tqdm import tqdm

        if self._bar is None or label != self._label or total != self._bar.total:
            self.close()
            disable = not sys.stderr.isatty()
            self._bar = tqdm(total=total, unit=self._unit, desc=label or None, file=sys.stderr, disable=disable)
            self._label = label
        self._bar.n = done
        self._bar.refresh()
        if done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _duration(text: str) -> float:
    """'90s', '15m', '2h', '1d' or plain seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = text.strip().lower()
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text and text[-1] in units else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 15m or 2h") from None
    if seconds < 1:
        raise argparse.ArgumentTypeError("the interval must be at least 1 second")
    return seconds


def _report_line(report: IngestReport, dry_run: bool = False) -> str:
    verb = "would be " if dry_run else ""
    return (
        f"{report.articles} articles: {report.added} {verb}added, {report.updated} {verb}replaced, "
        f"{report.folded} {verb}folded into a copy already stored, {report.unchanged} unchanged, "
        f"{report.removed} {verb}removed; {len(report.skipped)} skipped"
        + ("" if dry_run else f"; {report.chunks} chunks embedded in {report.seconds:.1f}s")
    )


def _ingest(settings: Settings, sources: list[str], dry_run: bool) -> int:
    from rag.pipeline import build_pipeline

    pipeline = build_pipeline(settings)
    report = pipeline.ingest_sources(sources, dry_run=dry_run, progress=ProgressBar("article"))
    if dry_run:
        print("dry run: nothing was stored")
    print(_report_line(report, dry_run))
    for what, why in report.skipped:
        why = why.removeprefix(f"{what}: ").removeprefix(f"{Path(what).name}: ")
        print(f"  skipped {what}: {why}")
    return 1 if report.skipped and not report.articles else 0


def _watch(settings: Settings, feeds: list[str], every: float, polls: int | None) -> int:
    from rag.feeds import FeedWatcher
    from rag.pipeline import build_pipeline

    pipeline = build_pipeline(settings)

    def said(poll: PollReport) -> None:
        print(f"{poll.feed}: {poll.summary()}", flush=True)

    watcher = FeedWatcher(pipeline.feeds, feeds, every, on_poll=said)
    with contextlib.suppress(KeyboardInterrupt):
        watcher.run(rounds=polls)
    return 0


def _ask(settings: Settings, question: str, top_k: int | None, as_json: bool) -> int:
    from rag.pipeline import build_pipeline

    pipeline = build_pipeline(settings)
    if pipeline.is_empty() and settings.seeds_dir.is_dir():
        pipeline.ingest([settings.seeds_dir])
    answer = pipeline.ask(question, top_k=top_k)
    if as_json:
        body = {
            "question": answer.question,
            "answer": answer.text,
            "answerable": answer.answerable,
            "mode": answer.mode,
            "confidence": answer.confidence,
            "citations": [asdict(c) for c in answer.citations],
            "flags": [asdict(f) for f in answer.flags],
            "warnings": answer.warnings,
            "timings_ms": answer.timings_ms,
        }
        print(json.dumps(body, indent=2, ensure_ascii=False, default=str))
        return 0 if answer.answerable else 3
    print(answer.text)
    if answer.citations:
        print("\nSources:")
        for c in answer.citations:
            print(f"  [{c.n}] {c.title} ({c.source}, {c.article_id}, chars {c.quote_start}-{c.quote_end})")
            print(f"      “{c.quote}”")
    for f in answer.flags:
        print(f"flag: sentence {f.sentence} {f.kind}: {f.detail}", file=sys.stderr)
    for warning in answer.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0 if answer.answerable else 3


def _recover(settings: Settings, source: Path) -> int:
    from rag.pipeline import build_pipeline
    from rag.recovery import RecoveryError, database_file, read_articles

    db = database_file(source)
    if not settings.chroma_host and db.resolve() == (settings.chroma_path / "chroma.sqlite3").resolve():
        raise RecoveryError(f"{db} is the index to write to: set RAG_DATA_DIR to a new folder and recover into it")
    recovered = read_articles(db, settings.collection)
    print(f"read {len(recovered.articles)} articles from {db}")
    for article_id in recovered.changed:
        print(
            f"warning: {article_id}: its record does not rebuild the version it names; recovered as stored",
            file=sys.stderr,
        )
    for article_id in recovered.lost:
        print(f"warning: {article_id}: its record has no text or an unreadable value; not recovered", file=sys.stderr)
    report = build_pipeline(settings).ingest_articles(recovered.articles, progress=ProgressBar("article"))
    print(
        f"{report.articles} articles: {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged; {report.chunks} chunks embedded in {report.seconds:.1f}s"
    )
    return 1 if recovered.lost else 0


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import faulthandler
    import signal

    import uvicorn

    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1 PID`: every thread's stack, on stderr

    from api.logs import log_config
    from api.main import create_app
    from api.server import uvicorn_config

    app = create_app(settings)
    config = uvicorn_config(app, settings, host or settings.host, port or settings.port, log_config=log_config("info"))
    with contextlib.suppress(KeyboardInterrupt):  # as uvicorn.run does: Ctrl+C is how a foreground server stops
        uvicorn.Server(config).run()
    return 0


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from eval.datasets import news_quiz
    from eval.report import summary_lines, write_report
    from eval.suite import ABLATION_GROUPS, EvalConfig, run_eval

    if args.extraction is not None:
        return _eval_extraction(args.extraction, args.out)
    questions, corpus = args.questions, list(args.corpus)
    if args.news_quiz is not None:
        quiz = news_quiz(args.news_quiz)
        questions, corpus = questions or quiz.questions, corpus or [quiz.corpus]
    if args.subset_days is not None and corpus:
        import tempfile

        from eval.datasets import load_questions, window_subset

        asked = load_questions(questions or Path("eval/questions/seeds.jsonl"))
        corpus = [window_subset(corpus[0], asked, args.subset_days, Path(tempfile.gettempdir()))]
    groups = tuple(ABLATION_GROUPS) if args.ablations == "all" else tuple(g for g in args.ablations.split(",") if g)
    unknown = set(groups) - set(ABLATION_GROUPS)
    if unknown:
        print(f"rag: error: unknown ablation group(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    untouched = args.untouched
    if untouched is None and questions is None and Path(UNTOUCHED_SEEDS).is_file():
        untouched = Path(UNTOUCHED_SEEDS)
    config = EvalConfig(
        untouched=None if untouched is None or str(untouched) == "none" else untouched,
        questions=questions or Path("eval/questions/seeds.jsonl"),
        corpus=corpus,
        url=args.url,
        data_dir=args.data_dir,
        window_days=None if args.window_days < 0 else args.window_days,
        prefer_days=None if args.prefer_days < 0 else args.prefer_days,
        as_of=not args.no_as_of,
        ablations=groups,
    )
    result = run_eval(config, settings, progress=ProgressBar("question"), ingest_progress=ProgressBar("article"))
    from eval.datasets import load_questions

    result["subset_days"] = args.subset_days
    asked_all = load_questions(config.questions) + (load_questions(config.untouched) if config.untouched else [])
    texts = {q.id: q.question for q in asked_all}
    paths = write_report(result, args.out, texts)
    print("\n".join(summary_lines(result)))
    print(f"\nreport: {paths['markdown']}  result: {paths['json']}  chart: {paths['chart']}")
    return 0


def _eval_extraction(directory: Path, out: Path) -> int:
    from eval.extraction import evaluate_extraction

    result = evaluate_extraction(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "extraction.json"
    body = {k: getattr(result, k) for k in ("pages", "precision", "recall", "f1", "accuracy", "refused", "per_page")}
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(result.summary())
    print(f"result: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings()
        if args.command == "ingest":
            return _ingest(settings, args.sources, args.dry_run)
        if args.command == "watch":
            return _watch(settings, args.feeds, args.every, args.polls)
        if args.command == "ask":
            return _ask(settings, args.question, args.top_k, args.json)
        if args.command == "eval":
            return _eval(settings, args)
        if args.command == "recover":
            return _recover(settings, args.source)
        return _serve(settings, args.host, args.port)
    except RagError as exc:
        print(f"rag: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings: each problem in a line, without the values (they hold the API keys)
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            print(f"rag: configuration error: {f'{where}: ' if where else ''}{message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
