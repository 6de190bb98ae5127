"""One `rag eval` run: build or open the index, run our pipeline, the ablations and the baseline.

Indexes are cached under `data_dir/<corpus>/<prefix>-<chunk tokens>-<overlap>-<pooled|separate>`, so a second run
skips embedding (ingest skips unchanged articles). Everything runs in file order with fixed
settings, so the same index and questions give the same numbers (latencies aside).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.datasets import Question, load_questions
from eval.harness import Progress, RunResult, run_target
from eval.targets import HttpClient, HttpTarget, PipelineTarget, Target
from rag.answering import AnswerPolicy, ExtractiveAnswerer
from rag.indexing import Progress as IngestProgress
from rag.loading import corpus_files, load_file
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

ABLATION_GROUPS = ("retrieval", "prefix", "answer", "window", "baseline")
# (hard window, soft window) in days before the question; the default (None, 7) and the rerank's weight
# were chosen on both corpora's tune halves (news-quiz: soft 7 and 14 tie; hard windows lose Hits@5).
WINDOWS = ((None, None), (7, None), (14, None), (30, None), (None, 7), (None, 14), (30, 7))
# Answer-selection settings worth comparing (AnswerPolicy fields); the default policy is the main run.
POLICIES: dict[str, dict[str, Any]] = {
    "one sentence (max_sentences=1)": {"max_sentences": 1},
    "read 3 passages (passages=3)": {"passages": 3},
    "any article (same_article=False)": {"same_article": False},
    "no word overlap (lexical_weight=0)": {"lexical_weight": 0.0},
    "lenient (min_similarity=0.2, min_score=0.4)": {"min_similarity": 0.2, "min_score": 0.4},
    "strict (min_similarity=0.4, min_score=0.6)": {"min_similarity": 0.4, "min_score": 0.6},
}


@dataclass(slots=True)
class EvalConfig:
    """What to evaluate and where. `corpus`: files or folders to ingest (default: the settings' seeds)."""

    questions: Path
    corpus: list[Path] = field(default_factory=list)
    url: str | None = None
    data_dir: Path = Path("eval/.cache")
    window_days: int | None = None
    prefer_days: int | None = 7
    ablations: tuple[str, ...] = ()


def corpus_name(paths: Sequence[Path]) -> str:
    """A short name for a corpus, used for its cache folder ("news-quiz" for news-quiz/corpus.jsonl)."""
    first = paths[0].resolve()
    return first.parent.name if first.is_file() else first.name


def index_dir(config: EvalConfig, settings: Settings, corpus: Sequence[Path], prefix: str) -> Path:
    sentences = "pooled" if settings.embed_pool_sentences else "separate"
    tag = f"{prefix}-{settings.chunk_tokens}-{settings.chunk_overlap_sentences}-{sentences}"
    return config.data_dir / corpus_name(corpus) / tag


def open_index(
    config: EvalConfig, settings: Settings, corpus: Sequence[Path], prefix: str, progress: IngestProgress | None
) -> Pipeline:
    """A pipeline over the cached index of `corpus` embedded with `prefix`, ingesting what is missing."""
    update = {"data_dir": index_dir(config, settings, corpus, prefix), "embed_prefix": prefix}
    pipeline = build_pipeline(settings.model_copy(update=update))
    pipeline.ingest(list(corpus), progress=progress)
    return pipeline


def with_policy(pipeline: Pipeline, **changes: Any) -> Pipeline:
    """The same index and retriever with another answer policy."""
    policy = replace(pipeline.answerer.policy, **changes)
    return Pipeline(
        pipeline.settings,
        pipeline.store,
        pipeline.embedder,
        pipeline.indexer,
        pipeline.retriever,
        ExtractiveAnswerer(policy),
    )


def with_weights(pipeline: Pipeline, dense: float, lexical: float) -> Pipeline:
    """The same index with other fusion weights (0 switches a retriever off)."""
    settings = pipeline.settings.model_copy(update={"dense_weight": dense, "lexical_weight": lexical})
    other = build_pipeline(settings)
    other.answerer = pipeline.answerer
    return other


def run_eval(
    config: EvalConfig,
    settings: Settings,
    progress: Progress | None = None,
    ingest_progress: IngestProgress | None = None,
    pipeline: Pipeline | None = None,
    client: HttpClient | None = None,
) -> dict[str, Any]:
    """Run the evaluation and return the result document (see eval/report.py for its rendering).

    `pipeline` / `client`: use this pipeline (in process) or this HTTP client instead of building one.
    """
    started = time.perf_counter()
    questions = load_questions(config.questions)
    corpus = config.corpus or [settings.seeds_dir]
    dated = any(q.question_date for q in questions)
    window = config.window_days if dated else None
    prefer = config.prefer_days if dated else None
    runs: list[RunResult] = []

    def run(target: Target) -> RunResult:
        result = run_target(target, questions, progress)
        runs.append(result)
        return result

    if config.url or client is not None:
        if client is None:
            import httpx

            client = httpx.Client(base_url=config.url or "", timeout=60.0)
        run(HttpTarget(client, name="ours (http)", window_days=window, prefer_days=prefer))
        main = None
    else:
        main = pipeline or open_index(config, settings, corpus, settings.embed_prefix, ingest_progress)
        run(
            PipelineTarget(main, name=f"ours (hybrid, {settings.embed_prefix})", window_days=window, prefer_days=prefer)
        )
    if main is not None:
        _ablations(config, settings, questions, corpus, main, window, dated, run, ingest_progress)
    return {
        "questions_file": str(config.questions),
        "corpus": [str(p) for p in corpus],
        "mode": "http" if main is None else "in-process",
        "url": config.url,
        "window_days": window,
        "prefer_days": prefer,
        "settings": {
            k: settings.model_dump(mode="json")[k]
            for k in ("embed_prefix", "chunk_tokens", "chunk_overlap_sentences", "candidates", "rrf_k")
        }
        | {"dense_weight": settings.dense_weight, "lexical_weight": settings.lexical_weight},
        "answer_policy": {k: getattr(AnswerPolicy(), k) for k in AnswerPolicy.__dataclass_fields__},
        "seconds": round(time.perf_counter() - started, 1),
        "runs": [r.as_dict() for r in runs],
    }


def _ablations(
    config: EvalConfig,
    settings: Settings,
    questions: list[Question],
    corpus: list[Path],
    main: Pipeline,
    window: int | None,
    dated: bool,
    run: Any,
    ingest_progress: IngestProgress | None,
) -> None:
    groups = config.ablations
    prefer = config.prefer_days if dated else None
    if "retrieval" in groups:
        run(PipelineTarget(with_weights(main, 1.0, 0.0), name="dense only", window_days=window, prefer_days=prefer))
        run(PipelineTarget(with_weights(main, 0.0, 1.0), name="BM25 only", window_days=window, prefer_days=prefer))
    if "prefix" in groups:
        for prefix in ("none", "title", "title_date"):
            if prefix != settings.embed_prefix:
                other = open_index(config, settings, corpus, prefix, ingest_progress)
                run(PipelineTarget(other, name=f"embed prefix {prefix}", window_days=window, prefer_days=prefer))
    if "window" in groups and dated:
        for days, soft in WINDOWS:
            if (days, soft) != (window, config.prefer_days):
                label = "no date window" if days is None else f"date window {days} days"
                if soft is not None:
                    label = f"prefer last {soft} days" + ("" if days is None else f", window {days} days")
                run(PipelineTarget(main, name=label, window_days=days, prefer_days=soft))
    if "answer" in groups:
        for label, changes in POLICIES.items():
            run(PipelineTarget(with_policy(main, **changes), name=label, window_days=window, prefer_days=prefer))
    if "baseline" in groups:
        from eval.baseline import BaselineTarget

        articles = [a for path in corpus_files(corpus) for a in load_file(path)]
        path = config.data_dir / corpus_name(corpus) / "llamaindex-baseline"
        path.mkdir(parents=True, exist_ok=True)
        run(BaselineTarget(articles, main.embedder, path))
