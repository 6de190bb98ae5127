"""Sentence splitting against line length: `python -m bench.sentences`.

Splitting runs on every write before anything is embedded, so its cost must grow linearly with the
text, hostile text included: lines of nothing but abbreviations ("x. A x. A ...") or one quotation
left open across thousands of sentences, where no boundary is taken and the sentence start never
moves on. Prints, for each shape and length, the seconds of one split (best of three) and the
per-character cost, then the whole news-quiz corpus for scale.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rag.chunking import split_sentences

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "news-quiz" / "corpus.jsonl"
SHAPES = {
    "abbreviations": "x. A ",
    "open quotation": "He said. A ",
    "prose": "The minister said the talks went well. Officials in Beijing agreed. ",
}


def best_of(text: str, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        split_sentences(text)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    print("| line | characters | seconds | µs per 1k characters |")
    print("|---|---:|---:|---:|")
    for name, piece in SHAPES.items():
        for size in args.sizes:
            text = piece * (size // len(piece))
            if name == "open quotation":
                text = "“" + text + "”"
            seconds = best_of(text)
            print(f"| {name} | {len(text):,} | {seconds:.4f} | {seconds / len(text) * 1e9:.1f} |")
    if args.corpus.is_file():
        with args.corpus.open(encoding="utf-8") as handle:
            bodies = [json.loads(line)["body"] for line in handle]
        started = time.perf_counter()
        for body in bodies:
            split_sentences(body)
        seconds = time.perf_counter() - started
        chars = sum(map(len, bodies))
        name = f"news-quiz corpus ({len(bodies):,} articles)"
        print(f"| {name} | {chars:,} | {seconds:.4f} | {seconds / chars * 1e9:.1f} |")


if __name__ == "__main__":
    main()
