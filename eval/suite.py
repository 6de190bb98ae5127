"""One `rag eval` run: build or open the index, run our pipeline, the ablations and the baseline.

Indexes are cached under `data_dir/<corpus>/<prefix>-<chunk tokens>-<overlap>-<pooled|separate>`, so a second run
skips embedding (ingest skips unchanged articles). Everything runs in file order with fixed
settings, so the same index and questions give the same numbers (latencies aside).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from eval.datasets import Question, load_questions
from eval.harness import Progress, RunResult, run_target
from eval.targets import HttpClient, HttpTarget, PipelineTarget, Target
from rag.answering import ExtractiveAnswerer
from rag.indexing import Progress as IngestProgress
from rag.loading import corpus_files, load_file
from rag.pipeline import Pipeline, build_pipeline
from rag.policies import AnswerPolicy, Scale
from rag.reranking import SentenceRanker
from rag.settings import Settings

ABLATION_GROUPS = ("retrieval", "prefix", "answer", "window", "baseline")
# Date windows the harness computes and sends as filters, compared with asking `as_of` the question's date (the
# default, where the service reads the question's own "this week"): (hard window, soft window) in days before
# the question. Before `as_of`, the soft 7-day window was the default (chosen on news-quiz's tune half).
WINDOWS = ((None, None), (7, None), (30, None), (None, 7), (None, 14))
# Answer-selection variants worth comparing: (label, RerankPolicy changes, AnswerPolicy changes, cross-encoder?).
# The default policies are the main run.
VARIANTS: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("no cross-encoder (RAG_RERANKER=none)", {}, {}, False),
    ("one sentence (max_sentences=1)", {}, {"max_sentences": 1}, True),
    ("shortlist 4, budget 192 tokens", {"shortlist": 4, "budget_tokens": 192}, {}, True),
    ("shortlist 12, budget 768 tokens", {"shortlist": 12, "budget_tokens": 768}, {}, True),
    ("every sentence of 3 passages, no budget", {"passages": 3, "shortlist": 1000, "budget_tokens": 100_000}, {}, True),
    ("every sentence of 5 passages, no budget", {"shortlist": 1000, "budget_tokens": 100_000}, {}, True),
    ("passages reordered by their best sentence", {"reorder_passages": True}, {}, True),
    ("keep within 2 logits", {}, {"keep_within": 2.0}, True),
    ("keep within 6 logits", {}, {"keep_within": 6.0}, True),
    ("never refuse", {}, {"refuse_below": 0.0}, True),
]


@dataclass(slots=True)
class EvalConfig:
    """What to evaluate and where. `corpus`: files or folders to ingest (default: the settings' seeds)."""

    questions: Path
    corpus: list[Path] = field(default_factory=list)
    url: str | None = None
    untouched: Path | None = None  # questions no setting is chosen on, reported on their own
    data_dir: Path = Path("eval/.cache")
    window_days: int | None = None
    prefer_days: int | None = None
    as_of: bool = True  # dated questions are asked as of their date
    ablations: tuple[str, ...] = ()


def corpus_name(paths: Sequence[Path]) -> str:
    """A short name for a corpus, used for its cache folder ("news-quiz" for news-quiz/corpus.jsonl)."""
    first = paths[0].resolve()
    return first.parent.name if first.is_file() else first.name


def index_dir(config: EvalConfig, settings: Settings, corpus: Sequence[Path], prefix: str) -> Path:
    pooled = settings.embed_pool_sentences and settings.embedder in ("minilm", "minilm-int8")
    sentences = "pooled" if pooled else "separate"
    tag = f"{prefix}-{settings.chunk_tokens}-{settings.chunk_overlap_sentences}-{sentences}"
    if settings.embedder != "minilm":
        tag = f"{settings.embedder}-{tag}"
    return config.data_dir / corpus_name(corpus) / tag


def open_index(
    config: EvalConfig, settings: Settings, corpus: Sequence[Path], prefix: str, progress: IngestProgress | None
) -> Pipeline:
    """A pipeline over the cached index of `corpus` embedded with `prefix`, ingesting what is missing."""
    update = {"data_dir": index_dir(config, settings, corpus, prefix), "embed_prefix": prefix}
    pipeline = build_pipeline(settings.model_copy(update=update))
    pipeline.ingest(list(corpus), progress=progress)
    return pipeline


def with_policy(
    pipeline: Pipeline, rerank: dict[str, Any], answer: dict[str, Any], cross_encoded: bool = True
) -> Pipeline:
    """The same index, retriever and cross-encoder with other rerank and answer policies. `answer` changes the
    answer policy's fields, or, for the fields of its score scales (`refuse_below`, `keep_within`), the scale
    the run's ranking uses."""
    ranker = SentenceRanker(
        replace(pipeline.ranker.policy, **rerank), pipeline.ranker.cross_encoder if cross_encoded else None
    )
    policy = pipeline.answerer.policy
    scale_fields = {k: v for k, v in answer.items() if k in Scale.__dataclass_fields__}
    policy = replace(policy, **{k: v for k, v in answer.items() if k not in scale_fields})
    if scale_fields:
        which = "cross_encoder" if cross_encoded else "cheap"
        policy = replace(policy, **{which: replace(getattr(policy, which), **scale_fields)})
    return Pipeline(
        pipeline.settings,
        pipeline.store,
        pipeline.embedder,
        pipeline.indexer,
        pipeline.retriever,
        ranker,
        ExtractiveAnswerer(policy),
    )


def with_weights(pipeline: Pipeline, dense: float, lexical: float) -> Pipeline:
    """The same index with other fusion weights (0 switches a retriever off)."""
    settings = pipeline.settings.model_copy(update={"dense_weight": dense, "lexical_weight": lexical})
    other = build_pipeline(settings)
    other.ranker = pipeline.ranker
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
    untouched = load_questions(config.untouched) if config.untouched else []
    corpus = config.corpus or [settings.seeds_dir]
    dated = any(q.question_date for q in questions)
    window = config.window_days if dated else None
    prefer = config.prefer_days if dated else None
    runs: list[RunResult] = []

    def run(target: Target) -> RunResult:
        result = run_target(target, questions, progress, untouched)
        runs.append(result)
        return result

    if config.url or client is not None:
        if client is None:
            import httpx

            client = httpx.Client(base_url=config.url or "", timeout=60.0)
        run(HttpTarget(client, name="ours (http)", window_days=window, prefer_days=prefer, as_of=config.as_of))
        main = None
    else:
        main = pipeline or open_index(config, settings, corpus, settings.embed_prefix, ingest_progress)
        name = f"ours (hybrid, {settings.embed_prefix})"
        run(PipelineTarget(main, name=name, window_days=window, prefer_days=prefer, as_of=config.as_of))
    if main is not None:
        _ablations(config, settings, questions, corpus, main, window, dated, run, ingest_progress)
    return {
        "questions_file": str(config.questions),
        "corpus": [str(p) for p in corpus],
        "mode": "http" if main is None else "in-process",
        "url": config.url,
        "window_days": window,
        "prefer_days": prefer,
        "as_of": config.as_of and dated,
        "settings": {
            k: settings.model_dump(mode="json")[k]
            for k in ("embed_prefix", "chunk_tokens", "chunk_overlap_sentences", "candidates", "rrf_k")
        }
        | {"dense_weight": settings.dense_weight, "lexical_weight": settings.lexical_weight},
        "reranker": settings.reranker,
        "rerank_policy": asdict(main.ranker.policy) if main is not None else None,
        "answer_policy": asdict(main.answerer.policy) if main is not None else asdict(AnswerPolicy()),
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
    dates: dict[str, Any] = {"window_days": window, "prefer_days": prefer, "as_of": config.as_of}
    if "retrieval" in groups:
        run(PipelineTarget(with_weights(main, 1.0, 0.0), name="dense only", **dates))
        run(PipelineTarget(with_weights(main, 0.0, 1.0), name="BM25 only", **dates))
    if "prefix" in groups:
        for prefix in ("none", "title", "title_date"):
            if prefix != settings.embed_prefix:
                other = open_index(config, settings, corpus, prefix, ingest_progress)
                run(PipelineTarget(other, name=f"embed prefix {prefix}", **dates))
    if "window" in groups and dated:
        for days, soft in WINDOWS:
            if (days, soft) != (window, config.prefer_days) or config.as_of:
                label = "no dates (asked today)" if days is None else f"date window {days} days"
                if soft is not None:
                    label = f"prefer last {soft} days" + ("" if days is None else f", window {days} days")
                run(PipelineTarget(main, name=label, window_days=days, prefer_days=soft, as_of=False))
    if "answer" in groups:
        for label, rerank, answer, cross_encoded in VARIANTS:
            if cross_encoded and main.ranker.cross_encoder is None:
                continue  # the main run has no cross-encoder to vary
            variant = with_policy(main, rerank, answer, cross_encoded)
            run(PipelineTarget(variant, name=label, **dates))
    if "baseline" in groups:
        from eval.baseline import BaselineTarget

        articles = [a for path in corpus_files(corpus) for a in load_file(path)]
        path = config.data_dir / corpus_name(corpus) / "llamaindex-baseline"
        path.mkdir(parents=True, exist_ok=True)
        run(BaselineTarget(articles, main.embedder, path))
