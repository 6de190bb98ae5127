from __future__ import annotations

import hashlib
import json
import math
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from rag.lexical import INDEX_FORMAT, TERMS_VERSION, LexicalDoc, LexicalIndex, LexicalView, Moved, chunk_key
from rag.models import ArticleFields, Chunk, Filters, day_number
from rag.pipeline import Pipeline, build_pipeline
from tests.conftest import SEEDS, make_settings


def make_chunk(article_id: str, index: int, version: str = "v1", **fields: object) -> Chunk:
    values: dict[str, object] = {"source": f"{article_id}.txt", "title": "", "sentences": ()}
    values.update(fields)
    chunk_id = hashlib.sha256(f"{article_id}/{version}/{index}".encode()).hexdigest()[:24]
    return Chunk(chunk_id, article_id, version, index, "", 0, 0, **values)  # type: ignore[arg-type]


def sync(index: LexicalIndex, chunks: list[Chunk], docs: list[list[str]]) -> LexicalView:
    """What the snapshot loader does: bring `index` to exactly `chunks` (their terms `docs`), hits as positions in
    `chunks`; again with every chunk when the index moved to memory."""
    rows = {chunk_key(c.id): row for row, c in enumerate(chunks)}
    want = {c.article_id: c.article_hash for c in chunks}
    given = [
        LexicalDoc(
            chunk_key(c.id), c.article_id, c.source, day_number(c.published_at) if c.published_at else 0, " ".join(d)
        )
        for c, d in zip(chunks, docs, strict=True)
    ]

    def rows_of(keys: object) -> np.ndarray:
        return np.asarray([rows.get(int(k), -1) for k in keys], dtype=np.int64)  # type: ignore[attr-defined]

    try:
        return index.sync(want, given, rows_of)
    except Moved:
        return index.sync(want, given, rows_of)


def term_index(docs: list[list[str]]) -> LexicalView:
    """An in-memory index of `docs` (each its terms), one article each: term statistics for a test."""
    return sync(LexicalIndex(), [make_chunk(f"a{i}", 0) for i in range(len(docs))], docs)


def test_the_engine_indexes_exactly_our_terms() -> None:
    docs = [["year-end", "year", "o'brien"], ["münchen", "北京", "12-point"], ["year"]]
    view = term_index(docs)
    assert len(view) == 3
    for term, df in [("year-end", 1), ("year", 2), ("o'brien", 1), ("münchen", 1), ("北京", 1), ("12-point", 1)]:
        assert view.document_frequency(term) == df, term
    assert view.document_frequency("end") == 0 and view.document_frequency("Year") == 0  # no splitting, no folding
    assert [row for row, _ in view.top(["北京"], 5)] == [1]
    assert view.top(["absent"], 5) == [] and view.top([], 5) == []


def test_idf_is_bm25s_and_ranking_weighs_rare_and_repeated_terms() -> None:
    view = term_index([["china", "putin", "putin"], ["china", "putin"], ["china", "gas"], ["china", "oil"]])
    assert view.idf("putin") == pytest.approx(math.log(1 + (4 - 2 + 0.5) / (2 + 0.5)))
    assert view.idf("never") == pytest.approx(math.log(1 + 4.5 / 0.5))  # unseen terms weigh the most
    assert view.idf("gas") > view.idf("putin") > view.idf("china")
    ranked = [row for row, _ in view.top(["putin", "china"], 4)]
    assert ranked[:2] == [0, 1] and set(ranked) == {0, 1, 2, 3}  # two Putins beat one, both beat China alone
    once, twice = view.top(["gas", "china"], 1), view.top(["gas", "gas", "china"], 1)
    assert twice[0][1] > once[0][1]  # a repeated query term counts again, as it did with bm25s


def test_filters_in_the_engine_keep_what_the_snapshot_mask_keeps(pipeline: Pipeline) -> None:
    snapshot = pipeline.retriever.refresh()
    query = ["putin", "china", "gas", "xi", "sanction", "war"]
    everything = snapshot.lexical.top(query, len(snapshot))
    assert len(everything) > 20
    days = sorted({int(d) for d in snapshot.columns.days if d})
    day = days[len(days) // 2] if days else None
    middle = date(day // 10000, day // 100 % 100, day % 100) if day is not None else None
    some = sorted({snapshot.article_of(row) for row in range(len(snapshot))})[:3]
    source = snapshot.read([0])[0].chunk.source
    cases = [
        Filters(sources=(source,)),
        Filters(article_ids=tuple(some)),
        Filters(article_ids=tuple(some), sources=(source,)),
    ]
    if middle is not None:
        cases += [Filters(date_from=middle), Filters(date_to=middle), Filters(date_from=middle, date_to=middle)]
    for filters in cases:
        mask = snapshot.mask(filters)
        assert mask is not None and 0 < mask.sum() < len(snapshot)
        want = [row for row, _ in everything if mask[row]]
        got = [row for row, _ in snapshot.lexical.top(query, len(snapshot), filters)]
        assert sorted(got) == sorted(want), filters
        assert [row for row, _ in snapshot.lexical.top(query, 3, filters)] == got[:3]


def test_undated_chunks_pass_a_date_filter_only_when_it_lets_them() -> None:
    chunks = [make_chunk("dated", 0, published_at=date(2023, 3, 1)), make_chunk("undated", 0)]
    view = sync(LexicalIndex(), chunks, [["gas"], ["gas"]])
    strict = Filters(date_to=date(2023, 12, 31))
    assert [row for row, _ in view.top(["gas"], 5, strict)] == [0]
    assert [row for row, _ in view.top(["gas"], 5, Filters(date_from=date(2023, 4, 1)))] == []
    lenient = Filters(date_to=date(2023, 12, 31), undated=True)
    assert sorted(row for row, _ in view.top(["gas"], 5, lenient)) == [0, 1]


def corpus_v1() -> tuple[list[Chunk], list[list[str]]]:
    chunks = [make_chunk("a", 0), make_chunk("a", 1), make_chunk("b", 0), make_chunk("c", 0)]
    return chunks, [["gas", "pipelin"], ["gas", "price"], ["oil"], ["gas", "oil", "coal"]]


def test_a_reopened_index_writes_nothing_and_then_only_what_changed(tmp_path: Path) -> None:
    chunks, docs = corpus_v1()
    first = LexicalIndex(tmp_path / "lex")
    sync(first, chunks, docs)
    assert first.indexed_chunks == 4
    first.close()

    again = LexicalIndex(tmp_path / "lex")
    view = sync(again, chunks, docs)
    assert again.indexed_chunks == 0  # opened as it was left, not rebuilt
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1, 3]

    # "a" gets a new version, "b" is deleted, "d" is new: only a's and d's chunks are written.
    changed = [make_chunk("a", 0, "v2"), make_chunk("c", 0), make_chunk("d", 0)]
    view2 = sync(again, changed, [["coal"], ["gas", "oil", "coal"], ["gas"]])
    assert again.indexed_chunks == 2
    assert sorted(row for row, _ in view2.top(["gas"], 10)) == [1, 2]
    assert view2.top(["pipelin"], 10) == [] and view2.top(["price"], 10) == []
    assert len(view2) == 3
    # The old view still searches the version it was made of.
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1, 3]
    again.close()
    state = json.loads((tmp_path / "lex" / "state.json").read_text())
    assert state == {
        "format": INDEX_FORMAT,
        "terms_version": TERMS_VERSION,
        "articles": {"a": "v2", "c": "v1", "d": "v1"},
    }


def test_articles_a_crash_left_unknown_are_indexed_again_once(tmp_path: Path) -> None:
    chunks, docs = corpus_v1()
    index = LexicalIndex(tmp_path / "lex")
    sync(index, chunks, docs)
    index.close()
    # What a crash between the engine's commit and the final state leaves: the articles written marked "".
    path = tmp_path / "lex" / "state.json"
    state = json.loads(path.read_text())
    state["articles"]["a"] = ""
    state["articles"]["gone"] = ""  # written, then the crash, then deleted from the store
    path.write_text(json.dumps(state))
    reopened = LexicalIndex(tmp_path / "lex")
    view = sync(reopened, chunks, docs)
    assert reopened.indexed_chunks == 2
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1, 3]  # each chunk once
    assert len(view) == 4


@pytest.mark.parametrize(
    "state",
    [
        {"format": INDEX_FORMAT, "terms_version": TERMS_VERSION - 1, "articles": {"a": "v1"}},
        {"format": INDEX_FORMAT + 1, "terms_version": TERMS_VERSION, "articles": {"a": "v1"}},
        "not json",
    ],
)
def test_an_index_of_another_format_or_tokeniser_is_rebuilt(tmp_path: Path, state: object) -> None:
    chunks, docs = corpus_v1()
    sync(LexicalIndex(tmp_path / "lex"), chunks, docs)
    (tmp_path / "lex" / "state.json").write_text(state if isinstance(state, str) else json.dumps(state))
    rebuilt = LexicalIndex(tmp_path / "lex")
    view = sync(rebuilt, chunks, docs)
    assert rebuilt.indexed_chunks == 4 and len(view) == 4
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1, 3]


def test_a_second_process_on_the_same_directory_keeps_its_index_in_memory(tmp_path: Path) -> None:
    chunks, docs = corpus_v1()
    owner = LexicalIndex(tmp_path / "lex")
    sync(owner, chunks, docs)
    other = LexicalIndex(tmp_path / "lex")  # its own open file: the lock is refused as to another process
    view = sync(other, chunks, docs)
    assert other.path is None and owner.path == tmp_path / "lex"
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1, 3]
    owner.close()
    other.close()


def test_chunk_keys_are_the_ids_hex_digits_or_a_hash() -> None:
    assert chunk_key("28dbf401ae4b2f7767d2a907") == 0x28DBF401AE4B2F77
    assert chunk_key("not-hex-at-all-no") != chunk_key("not-hex-at-all-nO")
    assert 0 <= chunk_key("short") < 1 << 64


def test_a_restarted_replica_reopens_its_index_and_a_second_replica_indexes_only_the_change(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ingest_on_start=False)
    first = build_pipeline(settings)
    first.ingest([SEEDS])
    chunks = len(first.retriever.refresh())
    assert first.retriever.lexical.indexed_chunks == chunks
    before = [h.chunk.id for h in first.retriever.retrieve("Power of Siberia 2 via Mongolia", top_k=10).hits]
    first.close()

    restarted = build_pipeline(settings)
    restarted.load()
    assert restarted.retriever.lexical.indexed_chunks == 0
    assert [
        h.chunk.id for h in restarted.retriever.retrieve("Power of Siberia 2 via Mongolia", top_k=10).hits
    ] == before

    # Another replica of the same store, with its own disk, follows a write made through the first.
    replica = build_pipeline(settings.model_copy(update={"lexical_dir": tmp_path / "replica-lexical"}))
    replica.load()
    assert replica.retriever.lexical.indexed_chunks == chunks
    restarted.add(
        [ArticleFields("quake-1", "Quake hits Afghanistan", "A magnitude 5.9 earthquake hit Paktika.")],
        10_000,
    )
    snapshot = replica.retriever.refresh(force=True)
    added = len(snapshot.article_rows("quake-1"))
    assert added and replica.retriever.lexical.indexed_chunks == chunks + added
    assert snapshot.article_of(snapshot.lexical.top(["paktika"], 1)[0][0]) == "quake-1"
    restarted.delete("quake-1")
    assert replica.retriever.refresh(force=True).lexical.top(["paktika"], 1) == []
    assert replica.retriever.lexical.indexed_chunks == chunks + added  # a removal writes nothing
    restarted.close()
    replica.close()


def test_a_folder_that_cannot_be_written_is_given_up_for_memory(tmp_path: Path) -> None:
    chunks, docs = corpus_v1()
    sync(LexicalIndex(tmp_path / "lex"), chunks, docs)
    state = tmp_path / "lex" / "state.json"
    state.unlink()
    state.mkdir()  # neither read, nor removed, nor replaced: as a disk that fails every write
    index = LexicalIndex(tmp_path / "lex")
    with pytest.raises(Moved):  # the loader then gives it every article's chunks again
        index.sync({"a": "v1"}, [], lambda keys: np.zeros(len(keys), dtype=np.int64))
    view = sync(index, chunks, docs)
    assert index.path is None and index.indexed_chunks == 4
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1, 3]
    view = sync(index, chunks[:2], docs[:2])  # and it goes on following the store, in memory
    assert sorted(row for row, _ in view.top(["gas"], 10)) == [0, 1]
