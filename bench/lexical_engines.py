"""Lexical engines side by side: `python -m bench.lexical_engines [--repeat 1 10]`.

bm25s (the in-memory index newsrag used before), tantivy and SQLite FTS5, each fed the same stored terms of the
news-quiz index's chunks (joined by spaces; tantivy's whitespace tokenizer, FTS5's ascii tokenizer with `-` and
`'` as token characters, so every engine indexes exactly our terms), and asked the terms of the seed and
news-quiz questions. `--repeat N` indexes the corpus N times over (ids made distinct) to see how each scales.
Each engine runs in its own process, so its RSS is its own: build seconds, on-disk MB, RSS after build and after
reopening, query p50/p95 of the top 50 (unfiltered, and restricted to a tenth of the articles), and its top 50
per question beside bm25s's (top-1 agreement, overlap of the top 10 and top 50).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from rag.text import terms

INDEX = Path("eval/.cache/news-quiz/title-200-1-pooled/chroma")
QUESTION_FILES = [Path("eval/questions/seeds.jsonl"), Path("../shared/corpora/news-quiz/queries-dev.jsonl")]
K = 50


def corpus(index: Path, repeat: int) -> list[tuple[str, str, list[str]]]:
    """(chunk id, article id, terms) of every chunk of the index, `repeat` times over."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    client = chromadb.PersistentClient(path=str(index), settings=ChromaSettings(anonymized_telemetry=False))
    col = client.get_collection("newsrag-chunks")
    out: list[tuple[str, str, list[str]]] = []
    offset = 0
    while True:
        got = col.get(limit=2000, offset=offset, include=["metadatas"])
        if not got["ids"]:
            break
        for i, m in zip(got["ids"], got["metadatas"], strict=True):
            out.append((i, str(m["article_id"]), str(m.get("terms") or "").split()))
        offset += 2000
    out.sort()
    return [(f"{i}~{r}", f"{a}~{r}", t) for r in range(repeat) for i, a, t in out]


def questions() -> list[list[str]]:
    out = []
    for path in QUESTION_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found = terms(json.loads(line)["question"])
                if found:
                    out.append(found)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class Bm25s:
    def __init__(self, docs: list[tuple[str, str, list[str]]], path: Path) -> None:
        import bm25s

        self.ids = [d[0] for d in docs]
        self.articles = np.asarray([d[1] for d in docs], dtype=object)
        self.bm25 = bm25s.BM25()
        self.bm25.index([d[2] or ["\x00"] for d in docs], show_progress=False)
        self.vocab = set(self.bm25.vocab_dict)
        self.path = path
        self.bm25.save(str(path))

    def reopen(self) -> None:
        import bm25s

        self.bm25 = bm25s.BM25.load(str(self.path))

    def top(self, query: list[str], allowed: set[str] | None) -> list[str]:
        q = [t for t in query if t in self.vocab]
        if not q:
            return []
        scores = self.bm25.get_scores(q)
        if allowed is not None:
            scores = np.where(np.isin(self.articles, list(allowed)), scores, 0.0)
        top = np.argpartition(-scores, K - 1)[:K]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [self.ids[i] for i in top if scores[i] > 0]


class Tantivy:
    def __init__(self, docs: list[tuple[str, str, list[str]]], path: Path) -> None:
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("terms", tokenizer_name="whitespace", index_option="freq")
        builder.add_text_field("article_id", tokenizer_name="raw", index_option="basic")
        builder.add_unsigned_field("key", fast=True, indexed=True)
        self.schema = builder.build()
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(self.schema, path=str(path))
        writer = self.index.writer(heap_size=128_000_000, num_threads=1)
        self.by_key: dict[int, str] = {}
        for chunk_id, article_id, found in docs:
            key = int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "little")
            self.by_key[key] = chunk_id
            doc = tantivy.Document()
            doc.add_text("terms", " ".join(found))
            doc.add_text("article_id", article_id)
            doc.add_unsigned("key", key)
            writer.add_document(doc)
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()

    def reopen(self) -> None:
        import tantivy

        self.index = tantivy.Index.open(str(self.path))

    def top(self, query: list[str], allowed: set[str] | None) -> list[str]:
        import tantivy

        searcher = self.index.searcher()
        clauses = [(tantivy.Occur.Should, tantivy.Query.term_query(self.schema, "terms", t)) for t in query]
        q = tantivy.Query.boolean_query(clauses)
        if allowed is not None:
            scope = tantivy.Query.const_score_query(
                tantivy.Query.term_set_query(self.schema, "article_id", sorted(allowed)), 0.0
            )
            q = tantivy.Query.boolean_query([(tantivy.Occur.Must, q), (tantivy.Occur.Must, scope)])
        hits = searcher.search(q, K, count=False).hits
        keys = searcher.fast_field_values("key", [a for _, a in hits])
        return [self.by_key[k] for k in keys]


class Fts5:
    def __init__(self, docs: list[tuple[str, str, list[str]]], path: Path) -> None:
        self.path = path / "lexical.sqlite3"
        path.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE VIRTUAL TABLE passages USING fts5(terms, article_id UNINDEXED, chunk_id UNINDEXED, "
            "tokenize=\"ascii tokenchars '-'''\")"
        )
        with db:
            db.executemany(
                "INSERT INTO passages(terms, article_id, chunk_id) VALUES (?, ?, ?)",
                ((" ".join(t), a, c) for c, a, t in docs),
            )
        db.execute("INSERT INTO passages(passages) VALUES ('optimize')")
        db.commit()
        self.db = db

    def reopen(self) -> None:
        self.db.close()
        self.db = sqlite3.connect(self.path)

    def top(self, query: list[str], allowed: set[str] | None) -> list[str]:
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in query)
        if allowed is None:
            rows = self.db.execute(
                "SELECT chunk_id FROM passages WHERE passages MATCH ? ORDER BY rank LIMIT ?", (match, K)
            ).fetchall()
        else:
            marks = ",".join("?" * len(allowed))
            rows = self.db.execute(
                f"SELECT chunk_id FROM passages WHERE passages MATCH ? AND article_id IN ({marks}) "
                "ORDER BY rank LIMIT ?",
                (match, *sorted(allowed), K),
            ).fetchall()
        return [r[0] for r in rows]


ENGINES: dict[str, Any] = {"bm25s": Bm25s, "tantivy": Tantivy, "fts5": Fts5}


def run_one(engine: str, repeat: int, index: Path) -> dict[str, Any]:
    docs = corpus(index, repeat)
    qs = questions()
    articles = sorted({d[1] for d in docs})
    allowed = set(articles[::10])
    base_rss = rss_mb()
    folder = Path(tempfile.mkdtemp(prefix=f"lex-{engine}-"))
    try:
        t0 = time.perf_counter()
        built = ENGINES[engine](docs, folder / "index")
        build_s = time.perf_counter() - t0
        del docs
        rss_built = rss_mb() - base_rss
        t0 = time.perf_counter()
        built.reopen()
        reopen_s = time.perf_counter() - t0
        tops, times, masked_times = [], [], []
        for q in qs * 3:
            t0 = time.perf_counter()
            tops.append(built.top(q, None))
            times.append((time.perf_counter() - t0) * 1000)
        for q in qs:
            t0 = time.perf_counter()
            built.top(q, allowed)
            masked_times.append((time.perf_counter() - t0) * 1000)
        return {
            "engine": engine,
            "docs": len(built.__dict__.get("ids", [])) or None,
            "build_s": build_s,
            "reopen_s": reopen_s,
            "disk_mb": disk_mb(folder),
            "rss_mb": rss_built,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "p50_ms": statistics.median(times),
            "p95_ms": float(np.percentile(times, 95)),
            "masked_p50_ms": statistics.median(masked_times),
            "tops": tops[: len(qs)],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def parity(base: list[list[str]], other: list[list[str]]) -> dict[str, float]:
    top1 = [bool(a) and bool(b) and a[0] == b[0] for a, b in zip(base, other, strict=True) if a]
    o10 = [len(set(a[:10]) & set(b[:10])) / min(10, len(a)) for a, b in zip(base, other, strict=True) if a]
    o50 = [len(set(a) & set(b)) / len(a) for a, b in zip(base, other, strict=True) if a]
    return {"top1_same": float(np.mean(top1)), "overlap10": float(np.mean(o10)), "overlap50": float(np.mean(o50))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--index", type=Path, default=INDEX)
    parser.add_argument("--engine", choices=list(ENGINES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(run_one(args.engine, args.repeat[0], args.index)))
        return
    print(f"{os.cpu_count()} cores; K={K}; RSS is each engine's own process, after building (minus before)")
    print(
        "| chunks | engine | build s | reopen s | disk MB | RSS MB | p50 ms | p95 ms | 10% of articles p50 ms "
        "| top-1 same as bm25s | top-10 overlap | top-50 overlap |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for repeat in args.repeat:
        results = {}
        for engine in ENGINES:
            cmd = [sys.executable, "-m", "bench.lexical_engines", "--engine", engine, "--repeat", str(repeat)]
            done = subprocess.run([*cmd, "--index", str(args.index)], capture_output=True, text=True, check=True)
            results[engine] = json.loads(done.stdout.strip().splitlines()[-1])
        chunks = len(corpus(args.index, 1)) * repeat
        for engine, r in results.items():
            p = parity(results["bm25s"]["tops"], r["tops"])
            print(
                f"| {chunks:,} | {engine} | {r['build_s']:.2f} | {r['reopen_s']:.3f} | {r['disk_mb']:.1f} | "
                f"{r['rss_mb']:.0f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['masked_p50_ms']:.2f} | "
                f"{p['top1_same']:.2f} | {p['overlap10']:.2f} | {p['overlap50']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
