"""How many articles of a corpus fold as syndicated copies, and each fold to check by hand.

    python -m eval.syndication [CORPUS ...] [--any-outlet]

Reads the corpus as `rag ingest` would and folds it in order as the indexer does (`rag.syndication`): prints how
many articles fold, then each fold (the copy, the article it folds into, their estimated Jaccard, outlets, dates
and titles). `--any-outlet` drops the rule that only another outlet's copy folds, to see what that rule keeps
apart.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.errors import InvalidDocument
from rag.loading import corpus_files, load_file
from rag.syndication import CopyFinder, SyndicationPolicy, _minhash, body_text, signature


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("corpus", nargs="*", type=Path, default=[Path("../shared/corpora/news-quiz/corpus.jsonl")])
    parser.add_argument("--any-outlet", action="store_true", help="fold copies from the same outlet too")
    args = parser.parse_args()
    policy = SyndicationPolicy(other_outlets_only=not args.any_outlet)
    articles = []
    for path in corpus_files(args.corpus):
        try:
            articles.extend(load_file(path))
        except InvalidDocument:  # a page with no article: `rag ingest` skips it too
            continue
    signatures = {a.id: signature(body_text(a), policy) for a in articles}
    finder = CopyFinder(policy)
    by_id = {a.id: a for a in articles}
    folds: list[tuple[str, str]] = []
    for a in articles:
        sign = signatures[a.id]
        original = finder.original_of(a.id, sign, a.source)
        if original:
            folds.append((a.id, original))
        elif sign:
            finder.add(a.id, sign, a.source)
    rule = "any outlet" if args.any_outlet else "other outlets only"
    compared = sum(1 for s in signatures.values() if s)
    print(f"{len(articles)} articles, {compared} long enough to compare ({policy.min_words}+ words); ")
    print(
        f"{len(folds)} fold as copies (estimated Jaccard of word {policy.shingle_words}-shingles "
        f">= {policy.threshold}, {rule})"
    )
    for copy, original in folds:
        a, b = by_id[copy], by_id[original]
        similarity = _minhash(signatures[copy] or "", policy).jaccard(_minhash(signatures[original] or "", policy))  # type: ignore[attr-defined]
        print(f"  {similarity:.2f}  {copy} [{a.source}, {a.published_at}] {a.title[:70]!r}")
        print(f"     into {original} [{b.source}, {b.published_at}] {b.title[:70]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
