"""The DuckDB projection: the fold, BM25 against rank_bm25, atomic batches, erasure."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from rank_bm25 import BM25Okapi

from mnemoflow.pipeline.bench.log import synthetic_text
from mnemoflow.projections import postings
from mnemoflow.projections.duck import DuckProjection, wal_path
from mnemoflow.projections.errors import ProjectionError
from mnemoflow.projections.lexical import BM25Settings, LexicalIndex, bm25
from mnemoflow.projections.memstate import CONTEXT_FIELD, doc_id
from mnemoflow.projections.text import dated, tokenize
from tests.projections.events import Events

QUERIES = [
    "Alice trip to Paris with friends",
    "dog named Pepper",
    "ramen Friday",
    "doctor sleep check-up November",
    "Globex working moved",
]


def _corpus(duck: DuckProjection, ev: Events) -> dict[str, str]:
    """Stores, updates and forgets over several batches; returns the active texts."""
    texts = {f"m{i}": synthetic_text(i * 3) + (" Alice" if i % 3 else "") for i in range(80)}
    events = [ev.stored(mid, text) for mid, text in texts.items()]
    duck.apply("input", events[:30])
    duck.apply("input", events[30:])
    changes = []
    for i in range(0, 80, 7):
        texts[f"m{i}"] = f"Alice changed her plan {i}: a trip to Lima in May"
        changes.append(ev.updated(f"m{i}", texts[f"m{i}"]))
    for i in range(3, 80, 11):
        changes.append(ev.forgotten(f"m{i}"))
        texts.pop(f"m{i}", None)
    changes.append(ev.feedback("m1", True))
    duck.apply("input", changes[:5])
    duck.apply("input", changes[5:])
    return texts


def test_bm25_matches_rank_bm25_after_incremental_changes() -> None:
    duck, ev = DuckProjection(), Events()
    active = _corpus(duck, ev)
    ids = list(active)
    rows = {m: duck.get(m) for m in ids}
    reference = BM25Okapi(
        [tokenize(dated(active[m], rows[m].occurred_at)) for m in ids]  # type: ignore[union-attr]
    )
    for query in QUERIES:
        ours = dict(bm25(duck.con, "n", query, 1000, BM25Settings()))
        want = reference.get_scores(tokenize(query))
        for memory_id, score in zip(ids, want, strict=True):
            assert abs(ours.get(doc_id(memory_id), 0.0) - score) < 1e-6
        assert set(ours) <= {doc_id(m) for m in ids}  # nothing forgotten is found


def test_a_kept_bm25_index_rereads_only_changed_docs_and_still_matches_rank_bm25() -> None:
    """Loaded once, then stores, updates and forgets in several batches: the index lays the
    changed docs' postings over those it read, and scores equal rank_bm25 on the texts of
    now (document count, lengths and idf floor included); an erasure makes it read all."""
    duck, ev = DuckProjection(), Events()
    texts = {f"m{i}": synthetic_text(i * 5) for i in range(60)}
    duck.apply("input", [ev.stored(m, t) for m, t in texts.items()])
    index = LexicalIndex(lambda: duck.con, BM25Settings(), lambda: duck.changes)
    assert index.search("n", tokenize("Alice trip"), 3)
    first = getattr(index._views.get(("n", 0)), "base", None)
    assert first is not None
    for start in range(0, 30, 10):
        batch = []
        for i in range(start, start + 10):
            if i % 3 == 0:
                texts[f"m{i}"] = f"Alice moved her trip {i} to Lima, with Pepper the dog"
                batch.append(ev.updated(f"m{i}", texts[f"m{i}"]))
            elif i % 3 == 1:
                batch.append(ev.forgotten(f"m{i}"))
                texts.pop(f"m{i}")
            else:
                texts[f"new{i}"] = f"Ramen on Friday {i} with Alice in Paris"
                batch.append(ev.stored(f"new{i}", texts[f"new{i}"]))
        duck.apply("input", batch)
        ids = list(texts)
        rows = {m: duck.get(m) for m in ids}
        reference = BM25Okapi(
            [tokenize(dated(texts[m], rows[m].occurred_at)) for m in ids]  # type: ignore[union-attr]
        )
        for query in QUERIES:
            ours = dict(index.search("n", tokenize(query), 1000))
            want = reference.get_scores(tokenize(query))
            for memory_id, score in zip(ids, want, strict=True):
                assert abs(ours.get(doc_id(memory_id), 0.0) - score) < 1e-6
            assert set(ours) <= {doc_id(m) for m in ids}
    view = index._views.get(("n", 0))
    assert view is not None and view.base is first and len(view.changed) == 30  # laid over
    duck.apply("input", [ev.stored("x", "Alice in Oslo", ns="other"), ev.erased("other")])
    index.search("n", tokenize("Alice"), 3)
    assert getattr(index._views.get(("n", 0)), "base", None) is not first


def test_bm25_is_scoped_to_the_namespace() -> None:
    duck, ev = DuckProjection(), Events()
    duck.apply(
        "input",
        [ev.stored("a", "Alice likes Paris", ns="x"), ev.stored("b", "Alice likes Paris", ns="y")],
    )
    assert [d for d, _ in bm25(duck.con, "x", "paris", 10, BM25Settings())] == [doc_id("a")]


def test_rows_versions_feedback_and_positions() -> None:
    duck, ev = DuckProjection(), Events()
    _corpus(duck, ev)
    row = duck.get("m7")
    assert row is not None and row.version == 2 and row.text is not None
    assert row.text.startswith("Alice changed her plan 7")
    assert duck.get("m3") is not None and duck.get("m3").status == "forgotten"  # type: ignore[union-attr]
    assert duck.applied("input") == ev.positions["input"]
    assert duck.counts() == {"active": 73, "forgotten": 7}
    versions = duck.con.execute("SELECT count(*) FROM versions").fetchall()[0][0]
    assert versions == 80 + 12
    assert duck.con.execute("SELECT useful FROM feedback").fetchall() == [(True,)]


def test_a_failed_batch_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Applying a batch and its position is one transaction."""
    duck, ev = DuckProjection(), Events()
    duck.apply("input", [ev.stored("a", "first memory")])
    before = duck.checksums()

    def broken(con: object, rows: object, fields: object) -> None:
        raise __import__("duckdb").Error("disk on fire")

    monkeypatch.setattr(postings, "index", broken)  # the last write of a batch
    with pytest.raises(ProjectionError, match="disk on fire"):
        duck.apply("input", [ev.stored("b", "second memory"), ev.updated("a", "changed")])
    assert duck.checksums() == before
    assert duck.applied("input") == 1


def test_erasure_keeps_tombstones_and_leaves_no_text_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "m.duckdb"
    duck, ev = DuckProjection(path), Events()
    secret = "Zanzibar-4471 is the secret code"
    duck.apply(
        "input",
        [
            ev.stored("s", secret, ns="alice", doc="Z-99182"),
            ev.stored("o", "other words", ns="bob"),
        ],
    )
    duck.con.execute("CHECKPOINT")
    assert b"Zanzibar-4471" in path.read_bytes()
    duck.apply("input", [ev.erased("alice")])
    duck.compact()
    row = duck.get("s")
    assert row is not None and row.status == "erased" and row.text is None and row.metadata is None
    assert duck.get("o") is not None and duck.get("o").text == "other words"  # type: ignore[union-attr]
    assert bm25(duck.con, "alice", "zanzibar", 10, BM25Settings()) == []
    duck.close()
    for file in tmp_path.iterdir():
        data = file.read_bytes()
        assert b"Zanzibar" not in data and b"Z-99182" not in data, file


def test_store_after_erasure_in_the_same_batch_survives() -> None:
    duck, ev = DuckProjection(), Events()
    duck.apply(
        "input", [ev.stored("a", "old", ns="x"), ev.erased("x"), ev.stored("b", "new", ns="x")]
    )
    assert duck.get("a").status == "erased"  # type: ignore[union-attr]
    assert duck.get("b").text == "new"  # type: ignore[union-attr]


def test_events_of_erased_subjects_replay_as_tombstones() -> None:
    """Replaying after the key is gone (payload None) still records that the memory existed."""
    duck, ev = DuckProjection(), Events()
    duck.apply("input", [ev.stored("a", None, ns="x")])
    row = duck.get("a")
    assert row is not None and row.status == "erased" and row.text is None


@pytest.mark.parametrize("forget_first", [False, True])
def test_a_forgotten_text_leaves_the_context_of_the_memory_after_it(forget_first: bool) -> None:
    """The memory stored after a forgotten one held its text in its context: its words must
    not stay findable there, whichever of the forget and the context is folded first."""
    duck, ev = DuckProjection(), Events()
    a, b = ev.stored("a", "Zebra xylophone quartz"), ev.stored("b", "I went for a walk")
    embedded, forgotten = ev.embedded(b, context_of=a), ev.forgotten("a")
    duck.apply("input", [a, b])

    kept = LexicalIndex(lambda: duck.con, BM25Settings(), lambda: duck.changes)

    def context_hits(word: str) -> list[int]:
        """From a fresh read, and from an index kept across the batches (which re-reads
        only the docs they changed: b's, though the forget was a's)."""
        fresh = [d for d, _ in bm25(duck.con, "n", word, 5, BM25Settings(), CONTEXT_FIELD)]
        assert [d for d, _ in kept.search("n", tokenize(word), 5, CONTEXT_FIELD)] == fresh
        return fresh

    if forget_first:
        duck.apply("input", [forgotten])
        duck.apply_embedded([embedded])
    else:
        duck.apply_embedded([embedded])
        assert context_hits("xylophone") == [doc_id("b")]
        duck.apply("input", [forgotten])
    assert context_hits("xylophone") == [] and context_hits("walk") == []
    row = duck.get("b")
    assert row is not None and row.context is None and row.status == "active"
    assert [d for d, _ in bm25(duck.con, "n", "walk", 5, BM25Settings())] == [doc_id("b")]
    stats = duck.con.execute("SELECT docs FROM corpus WHERE field = 1").fetchall()
    assert stats in ([], [(0,)])  # no context document is counted any more


def test_a_file_whose_free_tail_duckdb_cut_off_opens_as_whole(tmp_path: Path) -> None:
    """After a checkpoint frees the last blocks, DuckDB cuts them off the file, but on the
    next open it still counts them: a file of all its used blocks is whole, and one cut
    below them is not."""
    path = tmp_path / "memories.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE kept AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(300000)"
    )
    con.execute("CHECKPOINT")
    con.execute("CREATE TABLE gone AS SELECT * FROM kept")
    con.execute("CHECKPOINT")
    grown = path.stat().st_size
    con.execute("DROP TABLE gone")
    con.execute("CHECKPOINT")
    con.close()
    assert path.stat().st_size < grown  # the free tail was cut off
    duck = DuckProjection(path)
    assert duck.con.execute("SELECT count(*) FROM kept").fetchone() == (300_000,)
    duck.close()
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3)
    with pytest.raises(ProjectionError, match="cannot open the DuckDB projection"):
        DuckProjection(path)


def test_a_bulk_fold_checkpoints_once_at_its_end(tmp_path: Path) -> None:
    """Inside `bulk` the write-ahead log grows past DuckDB's 16 MB threshold; at its end
    everything is checkpointed into the file and the threshold is DuckDB's again."""
    path = tmp_path / "memories.duckdb"
    duck, ev = DuckProjection(path), Events()

    def threshold() -> str:
        row = duck.con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()
        assert row is not None
        return str(row[0])

    default = threshold()
    with duck.bulk():
        assert threshold() != default
        for batch in range(8):
            duck.apply(
                "input",
                [ev.stored(f"m{batch}-{i}", synthetic_text(i) * 40) for i in range(600)],
            )
        assert wal_path(path).stat().st_size > 16 * 2**20  # no checkpoint on the way
    assert threshold() == default
    assert not wal_path(path).exists() or wal_path(path).stat().st_size == 0
    duck.close()
    again = DuckProjection(path)
    assert again.counts() == {"active": 4800}
    assert again.applied("input") == ev.positions["input"]


def test_compaction_works_where_the_data_directory_holds_a_quote(tmp_path: Path) -> None:
    """An erase compacts the file; a path with a quote in it (O'Brien's home) must not make
    the ATTACH statement fail."""
    directory = tmp_path / "O'Brien's \"memories\""
    directory.mkdir()
    duck, ev = DuckProjection(directory / "memories.duckdb"), Events()
    duck.apply("input", [ev.stored("s", "a secret", ns="alice"), ev.stored("o", "kept", ns="bob")])
    duck.apply("input", [ev.erased("alice")])
    duck.compact()
    assert duck.get("o") is not None and duck.get("o").text == "kept"  # type: ignore[union-attr]
    duck.close()
