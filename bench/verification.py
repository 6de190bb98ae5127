"""Latency of verifying an LLM answer's citations, in process: `python -m bench.verification`.

The "LLM answers" are the eval set's reference answers (human paraphrases, not quotes), each
sentence marked with the numbers of the retrieved passages that hold its evidence, which is what a
good model would write. Timed: what GenerativeAnswerer adds after generation (evidence vectors from
the index + Verifier.verify, which embeds the answer's sentences once). Also printed: how many of
these correct sentences verification accepts, i.e. its false-flag rate on good answers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.verification import Verifier, split_sentences

QUESTIONS = Path("eval/questions/seeds.jsonl")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=Path, default=Path("seeds"))
    parser.add_argument("--data-dir", type=Path, default=None, help="reuse an index (default: a fresh one)")
    parser.add_argument("--runs", type=int, default=10, help="passes over the answers")
    parser.add_argument("--passages", type=int, default=5)
    args = parser.parse_args()

    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="newsrag-bench-"))
    pipeline = build_pipeline(Settings(data_dir=data_dir, refresh_seconds=60))
    if pipeline.is_empty():
        pipeline.ingest([args.seeds])
    verifier = Verifier(pipeline.embedder)

    cases = []
    for line in QUESTIONS.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row.get("answerable") or not row.get("evidence"):
            continue
        retrieval = pipeline.retriever.retrieve(row["question"], args.passages, None)
        chunks = [h.chunk for h in retrieval.hits[: args.passages]]
        holding = [i for i, c in enumerate(chunks, 1) if any(e["text"][:60] in c.text for e in row["evidence"])]
        if not holding:
            continue  # retrieval missed the evidence: nothing a model could cite
        marks = "".join(f"[{n}]" for n in holding)
        text = " ".join(f"{s} {marks}" for s in split_sentences(row["reference_answer"]))
        cases.append((text, chunks, retrieval.snapshot))

    timings, sentences, flagged = [], 0, 0
    for run in range(args.runs + 1):
        for text, chunks, snapshot in cases:
            t = time.perf_counter()
            stored = {c.id: s.vectors for c in chunks if (s := snapshot.sentences(c.id)) is not None}
            result = verifier.verify(text, verifier.evidence(chunks, stored))
            elapsed = (time.perf_counter() - t) * 1000
            if run:  # the first pass warms up
                timings.append(elapsed)
            else:
                sentences += result.sentences
                flagged += sum(1 for f in result.flags if f.kind == "unsupported")
    timings.sort()
    print(f"cores: {os.cpu_count()}")
    print(f"answers: {len(cases)} reference answers, {sentences} sentences, cited as a good model would")
    print(
        f"verification median {statistics.median(timings):.1f} ms  "
        f"p95 {timings[int(0.95 * (len(timings) - 1))]:.1f} ms  over {len(timings)} verifications"
    )
    print(f"correct sentences flagged unsupported: {flagged}/{sentences}")


if __name__ == "__main__":
    main()
