"""Report: the result document as JSON, a Markdown report with a chart, and a one-screen summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.errors import InvalidDocument

# (key in a run's summary, column heading, how to show it)
COLUMNS = [
    ("article_hits@1", "art H@1", "{:.2f}"),
    ("article_hits@5", "art H@5", "{:.2f}"),
    ("article_hits@10", "art H@10", "{:.2f}"),
    ("article_mrr@10", "art MRR", "{:.2f}"),
    ("evidence_hits@1", "ev H@1", "{:.2f}"),
    ("evidence_hits@5", "ev H@5", "{:.2f}"),
    ("evidence_mrr@10", "ev MRR", "{:.2f}"),
    ("citation_precision", "cite P", "{:.2f}"),
    ("citation_recall", "cite R", "{:.2f}"),
    ("fact_recall", "facts", "{:.2f}"),
    ("answer_accuracy", "right", "{:.2f}"),
    ("answer_contains", "contains", "{:.2f}"),
    ("cites_gold", "cites gold", "{:.2f}"),
    ("refusal_accuracy", "refusal", "{:.2f}"),
    ("false_refusals", "false ref", "{}"),
    ("latency_ms_p50", "p50 ms", "{:.0f}"),
]
CHART_KEYS = [
    "article_hits@1",
    "article_hits@5",
    "article_mrr@10",
    "evidence_hits@1",
    "evidence_hits@5",
    "citation_precision",
    "fact_recall",
    "refusal_accuracy",
]
# Targets from the issue; a figure is compared with the one whose key it has.
TARGETS = {
    "seeds": {
        "evidence_hits@1": 0.90,
        "citation_precision": 0.95,
        "fact_recall": 0.95,
        "refusal_accuracy": 1.0,
    },
    "news-quiz": {"answer_contains": 0.75, "cites_gold": 0.80, "article_hits@1": 0.80, "article_mrr@10": 0.85},
}


def fmt(value: Any, pattern: str = "{:.2f}") -> str:
    return "–" if value is None else pattern.format(value)


def _present(runs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """The columns some run has a figure for."""
    return [c for c in COLUMNS if any(r["summary"].get(c[0]) is not None for r in runs)]


def table(runs: list[dict[str, Any]]) -> list[str]:
    cols = _present(runs)
    lines = ["| run | " + " | ".join(c[1] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for r in runs:
        figures = r["summary"]
        lines.append(f"| {r['name']} | " + " | ".join(fmt(figures.get(k), p) for k, _, p in cols) + " |")
    return lines


def misses(result: dict[str, Any], questions: dict[str, str]) -> list[str]:
    """Per-question table of the main run's misses: wrong retrieval, citation, facts or refusal."""
    run = result["runs"][0]
    lines = [
        "| id | question | art rank | ev rank | refused | facts | cite P | answer |",
        "|---|---|---:|---:|---|---:|---:|---|",
    ]
    count = 0
    for s in run["scores"]:
        missed_retrieval = (s["ranked_articles"] and s["article_rank"] != 1) or (
            s["ranked_evidence"] and s["evidence_rank"] != 1
        )
        wrong = s["answerable"] and (s["refused"] or (s["fact_recall"] or 0) < 1 or (s["citation_precision"] or 0) < 1)
        if not s["answerable"]:
            wrong = not s["refused"]
        if not (missed_retrieval or wrong):
            continue
        count += 1
        answer = " ".join(s["answer"].split())[:140].replace("|", "\\|")
        question = questions.get(s["id"], "")[:90].replace("|", "\\|")
        lines.append(
            f"| {s['id']} | {question} | {s['article_rank'] or '–'} | {s['evidence_rank'] or '–'} | "
            f"{'yes' if s['refused'] else 'no'} | {fmt(s['fact_recall'])} | {fmt(s['citation_precision'])} | {answer} |"
        )
    if not count:
        return ["No misses."]
    return lines


def chart(result: dict[str, Any], path: Path) -> None:
    """Grouped bars of the headline metrics, one group per metric, one bar per run (at most 8, baseline kept)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result["runs"]
    if len(runs) > 8:  # keep the main run's neighbours and always the baseline, the reference point
        baseline = [r for r in runs if r["retrieval_only"]]
        runs = [r for r in runs if not r["retrieval_only"]][: 8 - len(baseline[:1])] + baseline[:1]
    keys = [k for k in CHART_KEYS if any(r["summary"].get(k) is not None for r in runs)]
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(keys)), 4.5), dpi=100)
    width = 0.8 / max(len(runs), 1)
    for i, r in enumerate(runs):
        values = [r["summary"].get(k) or 0.0 for k in keys]
        ax.bar([x + i * width for x in range(len(keys))], values, width, label=r["name"])
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(keys))], keys, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(Path(result["questions_file"]).name)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def markdown(result: dict[str, Any], questions: dict[str, str], chart_name: str | None) -> str:
    runs = result["runs"]
    main = runs[0]
    lines = [
        f"# Evaluation: {Path(result['questions_file']).name}",
        "",
        f"Corpus: {', '.join(result['corpus'])}; mode: {result['mode']}; "
        f"date window: {result['window_days'] if result['window_days'] is not None else 'none'} days; "
        f"{main['summary']['questions']} questions; {result['seconds']} s.",
        "",
        *(
            [
                f"Corpus subset: only the articles dated within {result['subset_days']} days before a question "
                "(plus the evidence articles). Runs with a date window of at most that many days retrieve from "
                "the same articles as on the whole corpus; the no-window and baseline rows see fewer distractors "
                "than they would on the whole corpus.",
                "",
            ]
            if result.get("subset_days") is not None
            else []
        ),
        "## Runs side by side",
        "",
        *table(runs),
        "",
        "Retrieval figures come from the 10 passages retrieved per question (article level: deduplicated "
        "by article). The baseline is retrieval only (no answers).",
        "",
        "## Held-out check (main run)",
        "",
        "Tune on the `tune` half (even positions in the file), confirm on `check` (odd positions); the "
        "`untouched` set (seed questions no setting was chosen on) is reported beside them when it was run.",
        "",
        *table([{"name": f"{h} half" if h != "untouched" else h, "summary": s} for h, s in main["halves"].items()]),
    ]
    lines += ["", "## Misses of the main run", "", *misses(result, questions), ""]
    if chart_name:
        lines += ["## Chart", "", f"![metrics]({chart_name})", ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], out: Path, questions: dict[str, str]) -> dict[str, Path]:
    """Write result.json, report.md and chart.png under `out`; returns their paths."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidDocument(f"cannot create output folder {out}: {exc.strerror}") from exc
    stem = Path(result["questions_file"]).stem
    paths = {
        "json": out / f"{stem}.json",
        "markdown": out / f"{stem}.md",
        "chart": out / f"{stem}.png",
    }
    paths["json"].write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    chart(result, paths["chart"])
    paths["markdown"].write_text(markdown(result, questions, paths["chart"].name), encoding="utf-8")
    return paths


def summary_lines(result: dict[str, Any]) -> list[str]:
    """The one-screen summary printed at the end of a run: every run's headline figures."""
    runs = result["runs"]
    cols = _present(runs)
    name_width = max(len(r["name"]) for r in runs)
    lines = [f"{'run':<{name_width}}  " + " ".join(f"{c[1]:>9}" for c in cols)]
    for r in runs:
        lines.append(f"{r['name']:<{name_width}}  " + " ".join(f"{fmt(r['summary'].get(k), p):>9}" for k, _, p in cols))
    return lines
