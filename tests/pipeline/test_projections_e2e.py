"""Projections end to end: real model, real DuckDB, real FAISS, the real log."""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mnemoflow import Memory
from mnemoflow.actors.inline import run_follower
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import EMBEDDED_STREAM
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.bench.log import synthetic_text
from mnemoflow.projections import projector
from mnemoflow.projections.aside import AsideFold
from mnemoflow.projections.duck import DuckProjection
from mnemoflow.projections.errors import ProjectionError
from mnemoflow.projections.vector_projection import VectorProjection
from tests.pipeline.rows import projected


def _settings(home: Path, aside_above: int = 0):  # type: ignore[no-untyped-def]
    """`aside_above` 1: a rebuild folds the actors' own tables in a child process."""
    s = load_settings(home=home)
    return s.model_copy(
        update={
            "projections": s.projections.model_copy(
                update={"batch_size": 7, "actor_batch_size": 9, "aside_above": aside_above}
            ),
            "log": s.log.model_copy(update={"segment_bytes": 16384}),
        }
    )


def _populate(mem: Memory) -> dict[str, str]:
    ids = {}
    for i in range(40):
        r = mem.store(
            synthetic_text(i),
            namespace=f"user-{i % 3}",
            metadata={"i": i},
            occurred_at=datetime(2023, 1 + i % 12, 1, tzinfo=UTC),
        )
        ids[f"m{i}"] = r.memory_id
    for i in range(0, 40, 6):
        mem.update(ids[f"m{i}"], f"Updated memory number {i}")
    for i in range(1, 40, 9):
        mem.forget(ids[f"m{i}"])
    mem.feedback(ids["m2"], useful=True)
    for i in range(6):  # episodes: their rows, their tasks' vectors and the patterns
        run = str(mem.episodes.start(f"deploy service {i}", f"user-{i % 2}").memory_id)
        steps = [{"tool": "git", "action": "pull"}, {"tool": "kubectl", "action": "apply"}]
        mem.episodes.step_many(run, steps)
        mem.episodes.complete(run, True)
    return ids


def _built(home: Path) -> dict[str, str]:
    """Populate a home folded as it came, in this process; its checksums."""
    with Memory.open(settings=_settings(home)) as mem:
        _populate(mem)
        mem.sync()
        return mem.checksums()


def test_rebuild_equals_the_incremental_build(home: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        _populate(mem)
        mem.sync()
        mem.store("a late memory", namespace="user-0")
        mem.sync()
        incremental = mem.checksums()
        assert mem.stats()["memories"]["vectors"] == 41 - len(range(1, 40, 9))
        replayed = mem.rebuild()
        assert replayed == sum(s["events"] for s in mem.stats()["streams"].values())
        assert mem.checksums() == incremental
    with Memory.open(settings=_settings(home)) as mem:  # from the snapshot and the DuckDB file
        assert mem.checksums() == incremental


@pytest.fixture
def asides(monkeypatch: pytest.MonkeyPatch) -> list[AsideFold]:
    """Every fold started in a child process."""
    started: list[AsideFold] = []

    class Spy(AsideFold):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(projector, "AsideFold", Spy)
    return started


def test_rebuild_with_the_actors_tables_folded_in_a_child_process(
    home: Path, asides: list[AsideFold]
) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        ids = _populate(mem)
        mem.erase("user-1")
        mem.store("a memory after the erasure", namespace="user-1")
        mem.sync()
        incremental = mem.checksums()
    assert not asides  # folded as it came, in this process
    with Memory.open(settings=_settings(home, aside_above=1)) as mem:
        replayed = mem.rebuild()
        assert len(asides) == 1
        assert asides[0].names == ["extracted", "linked", "consolidated", "decay", "patterns"]
        assert replayed == sum(s["events"] for s in mem.stats()["streams"].values())
        assert mem.checksums() == incremental
        assert not (home / "projections" / projector.ASIDE_FILE).exists()
        # The merge ran on one thread; DuckDB's default is back for what comes next.
        setting = "SELECT current_setting('threads')"
        default = duckdb.connect().execute(setting).fetchone()
        assert mem.runtime.projector.duck.con.execute(setting).fetchone() == default
        hits = mem.recall("Updated memory number 6", namespace="user-0", k=3)
        assert hits[0].memory_id == ids["m6"]
        mem.sync()  # nothing new: the next fold starts from the merged positions
        assert len(asides) == 1 and mem.checksums() == incremental


def test_the_past_folded_in_a_child_process_equals_the_past_folded_here(
    home: Path, asides: list[AsideFold]
) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        ids = _populate(mem)
        mem.sync()
        cut = mem.history(ids["m20"])[0].position
    sums = {}
    for aside_above in (0, 1):
        with Memory.open(settings=_settings(home, aside_above), as_of=cut) as past:
            sums[aside_above] = past.checksums()
    assert len(asides) == 1
    assert sums[0] == sums[1]


def test_a_failed_child_fold_fails_the_rebuild_and_the_next_one_completes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _built(home)
    with Memory.open(settings=_settings(home, aside_above=1)) as mem:
        monkeypatch.setattr(sys, "executable", "/bin/false")  # the child exits at once, 1
        with pytest.raises(ProjectionError, match="process of its own failed"):
            mem.rebuild()
        assert not (home / "projections" / projector.ASIDE_FILE).exists()
        monkeypatch.undo()
        mem.runtime.project()  # the input and embeddings resume; the rest starts again
        assert mem.checksums() == expected


def test_a_long_fold_writes_one_faiss_snapshot_at_its_end(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(home)
    settings = settings.model_copy(
        update={"vectors": settings.vectors.model_copy(update={"snapshot_every": 10})}
    )
    written = Counter[str]()
    real = VectorProjection.snapshot

    def counting(self: VectorProjection) -> None:
        if self._since_snapshot:
            written["snapshots"] += 1
        real(self)

    monkeypatch.setattr(VectorProjection, "snapshot", counting)
    with Memory.open(settings=settings) as mem:
        for i in range(12):  # folded a few at a time: a snapshot every 10 events
            mem.store(synthetic_text(i), namespace="n")
            mem.sync()
        assert written["snapshots"] >= 2
        _populate(mem)
        mem.sync()
        expected = mem.checksums()
        written.clear()
        mem.rebuild()  # ~200 events in batches of 7: a long fold
        assert written["snapshots"] == 1
        assert mem.checksums() == expected
    with Memory.open(settings=settings) as mem:  # from that snapshot
        assert mem.checksums() == expected
    assert written["snapshots"] == 1


def test_lost_faiss_snapshot_is_rebuilt_by_replay(home: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        _populate(mem)
        mem.sync()
        before = mem.checksums()
    shutil.rmtree(home / "projections" / "faiss")
    with Memory.open(settings=_settings(home)) as mem:
        assert mem.checksums() == before


def test_embedder_is_exactly_once_across_interrupted_runs(home: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        _populate(mem)
        embedder = mem.runtime.follower("embedder")
        run_follower(mem.log, embedder, batch_size=5, stop=12)  # "crash" after position 12
        run_follower(mem.log, embedder, batch_size=5, start_after=8)  # replays 9..12 again
        run_follower(mem.log, embedder, batch_size=5)
        derived = Counter(
            r.causation.position
            for r in mem.log.stream(EMBEDDED_STREAM).read()
            if r.causation and r.kind == "memory.embedded"
        )
        texts = [
            r.position
            for r in mem.log.input.read()
            if r.kind in ("memory.stored", "memory.updated")
        ]
        assert sorted(derived) == texts
        assert set(derived.values()) == {1}
        assert mem.log.verify().ok


def test_as_of_a_position_and_a_time(home: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        ids = _populate(mem)
        mem.sync()
        cut = mem.history(ids["m5"])[0].position
        cut_time = mem.history(ids["m5"])[0].recorded_at
    for point in (cut, cut_time, cut_time.isoformat()):
        with Memory.open(settings=_settings(home), as_of=point) as past:
            rows = past.memories("user-2", limit=100)
            assert [r.memory_id for r in rows] == [ids[f"m{i}"] for i in (2, 5)]
            assert past.get(ids["m0"]).text == synthetic_text(0)  # type: ignore[union-attr]
            assert past.get(ids["m39"]) is None
            assert past.stats()["memories"]["vectors"] == 6


def test_as_of_into_a_directory_is_reused(home: Path, tmp_path: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        _populate(mem)
        mem.sync()
    into = tmp_path / "past"
    with Memory.open(settings=_settings(home), as_of=10, projections_dir=into) as past:
        first = past.checksums()
    assert (into / "memories.duckdb").exists()
    with Memory.open(settings=_settings(home), as_of=10, projections_dir=into) as past:
        assert past.checksums() == first
    with Memory.open(settings=_settings(home), as_of=20, projections_dir=into) as past:
        assert past.checksums() != first


def test_erasure_reaches_every_projection_file_and_the_past(home: Path) -> None:
    secret = "Quetzal-8812 lives at Rua Augusta 12"
    with Memory.open(settings=_settings(home)) as mem:
        kept = mem.store("Bob collects stamps", namespace="bob")
        gone = mem.store(secret, namespace="alice", metadata={"passport": "P-44120"})
        mem.sync()
        mem.erase("alice")
        mem.sync()
        assert mem.get(gone.memory_id).status == "erased"  # type: ignore[union-attr]
        assert mem.get(kept.memory_id).text == "Bob collects stamps"  # type: ignore[union-attr]
        stats = mem.stats()
        assert stats["memories"]["vectors"] == 1
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Quetzal" not in data and b"P-44120" not in data, path
    with Memory.open(settings=_settings(home), as_of=2) as past:
        row = past.get(gone.memory_id)
        assert row is not None and row.text is None and row.status == "erased"


def test_stats_report_lag_before_sync(home: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        mem.store("one", namespace="n")
        mem.store("two", namespace="n")
        stats = mem.stats()
        assert stats["actors"]["embedder"] == {"processed": 0, "lag": 2, "events_per_s": None}
        assert stats["projections"]["duckdb"]["lag"] == {
            "input": 2,
            "extracted": 0,
            "embedded": 0,
            "linked": 0,
            "consolidated": 0,
            "decay": 0,
            "patterns": 0,
        }
        mem.sync()
        stats = mem.stats()
        embedder = stats["actors"]["embedder"]
        assert (embedder["processed"], embedder["lag"]) == (2, 0)
        assert embedder["events_per_s"] > 0
        assert stats["projections"]["faiss"]["lag"] == {"input": 0, "embedded": 0}
        assert stats["disk_bytes"]["total"] == sum(
            v for k, v in stats["disk_bytes"].items() if k != "total"
        )


@pytest.mark.parametrize("bad", ["someday", "2024-13-45"])
def test_bad_as_of_is_refused(home: Path, bad: str) -> None:
    from mnemoflow.eventlog.errors import ValidationError

    with pytest.raises(ValidationError, match="as-of"):
        Memory.open(home=home, as_of=bad)


def test_context_is_the_previous_memory_within_the_window(home: Path) -> None:
    """Each memory is also indexed and embedded with the memory stored before it in its
    namespace, if that happened within `context_hours`; the link is kept as `prev_doc`."""
    from mnemoflow.projections.lexical import BM25Settings, bm25
    from mnemoflow.projections.memstate import doc_id

    t = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    with Memory.open(settings=_settings(home)) as mem:
        a = mem.store(
            "Caroline: I went to the adoption agency yesterday", namespace="c", occurred_at=t
        )
        b = mem.store("Melanie: How did it go?", namespace="c", occurred_at=t)
        other = mem.store("Unrelated note", namespace="elsewhere", occurred_at=t)
        c = mem.store(
            "Melanie: Back from the lake!",
            namespace="c",
            occurred_at=datetime(2023, 5, 20, tzinfo=UTC),
        )
        mem.sync()
        rb, rc = projected(mem, b.memory_id), projected(mem, c.memory_id)
        assert rb is not None and rc is not None
        assert rb.prev_doc == doc_id(a.memory_id)
        assert (
            rb.context == "8 May 2023: Caroline: I went to the adoption agency yesterday "
            "Melanie: How did it go?"
        )
        # Twelve days later: no neighbour, so the memory is its own context.
        assert rc.context == "20 May 2023: Melanie: Back from the lake!" and rc.prev_doc is None
        assert projected(mem, other.memory_id).prev_doc is None
        con, ns = mem.runtime.projector.duck.con, mem.log.keyring.namespace_id("c")
        assert ns is not None  # the projection knows the namespace by its id
        found = [d for d, _ in bm25(con, ns, "adoption agency", 5, BM25Settings(), field=1)]
        assert found[0] == doc_id(b.memory_id) or found[:2] == [
            doc_id(a.memory_id),
            doc_id(b.memory_id),
        ]
        assert set(found) == {doc_id(a.memory_id), doc_id(b.memory_id)}
        assert doc_id(b.memory_id) not in [
            d for d, _ in bm25(con, ns, "adoption agency", 5, BM25Settings(), field=0)
        ]
        assert mem.runtime.projector.vectors.count("context") == 4
        before = mem.checksums()
        mem.rebuild()
        assert mem.checksums() == before


def test_an_update_is_not_its_own_context(home: Path) -> None:
    from mnemoflow.projections.memstate import doc_id

    t = datetime(2023, 5, 8, tzinfo=UTC)
    with Memory.open(settings=_settings(home)) as mem:
        a = mem.store("Caroline: the first turn", namespace="c", occurred_at=t)
        b = mem.store("Melanie: the second turn", namespace="c", occurred_at=t)
        mem.update(b.memory_id, "Melanie: the second turn, corrected", occurred_at=t)
        mem.sync()
        row = projected(mem, b.memory_id)
        assert row is not None and row.prev_doc == doc_id(a.memory_id)
        assert (
            row.context == "8 May 2023: Caroline: the first turn "
            "Melanie: the second turn, corrected"
        )


def test_audit_lists_every_event_behind_a_memory(home: Path) -> None:
    with Memory.open(settings=_settings(home)) as mem:
        r = mem.store("Alice moved to Lyon", namespace="a")
        mem.update(r.memory_id, "Alice moved to Paris")
        mem.feedback(r.memory_id, useful=True)
        mem.sync()
        trail = mem.audit(r.memory_id)
        assert [(e.stream, e.kind) for e in trail[:3]] == [
            ("input", "memory.stored"),
            ("input", "memory.updated"),
            ("input", "feedback.recorded"),
        ]
        assert Counter((e.stream, e.kind) for e in trail[3:]) == {
            ("extracted", "memory.extracted"): 2,  # the text, then its update
            ("embedded", "memory.embedded"): 2,
            ("linked", "memory.linked"): 2,
            ("decay", "memory.scheduled"): 2,  # stored, then the useful feedback
        }
        derived = [e for e in trail if e.stream == "embedded"]
        assert [e.causation.position for e in derived] == [1, 2]  # type: ignore[union-attr]
        assert all(len(e.hash) == 64 and e.actor for e in trail)
        assert derived[0].actor == "embedder"


def test_a_failed_vector_change_fails_the_fold_and_the_next_one_completes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The vector projection is folded on a thread of its own: its error still reaches the
    caller, and nothing is skipped once it is gone."""
    real = VectorProjection.apply_embedded
    calls = Counter[str]()

    def failing(self: VectorProjection, opened: list[Opened]) -> None:
        calls["embedded"] += 1
        if calls["embedded"] == 2:
            raise RuntimeError("disk gone")
        real(self, opened)

    with Memory.open(settings=_settings(home)) as mem:
        _populate(mem)
        mem.sync()
        expected = mem.checksums()
        monkeypatch.setattr(VectorProjection, "apply_embedded", failing)
        with pytest.raises(RuntimeError, match="disk gone"):
            mem.rebuild()
        assert calls["embedded"] >= 2
        monkeypatch.setattr(VectorProjection, "apply_embedded", real)
        mem.runtime.project()
        assert mem.checksums() == expected


def test_an_error_here_stops_the_child_fold_and_the_next_fold_completes(
    home: Path, monkeypatch: pytest.MonkeyPatch, asides: list[AsideFold]
) -> None:
    real = DuckProjection.apply_embedded

    def failing(self: DuckProjection, opened: list[Opened]) -> None:
        if self.applied(EMBEDDED_STREAM) > 20:
            raise ProjectionError("disk gone")
        real(self, opened)

    expected = _built(home)
    with Memory.open(settings=_settings(home, aside_above=1)) as mem:
        monkeypatch.setattr(DuckProjection, "apply_embedded", failing)
        with pytest.raises(ProjectionError, match="disk gone"):
            mem.rebuild()
        assert len(asides) == 1
        assert not (home / "projections" / projector.ASIDE_FILE).exists()  # cancelled
        assert mem.stats()["projections"]["duckdb"]["applied"]["linked"] == 0
        monkeypatch.setattr(DuckProjection, "apply_embedded", real)
        mem.runtime.project()
        assert len(asides) == 2
        assert mem.checksums() == expected


def test_forgetting_a_memory_drops_its_words_from_the_next_ones_context(home: Path) -> None:
    """Found by hand: after a forget, the memory stored just after it (whose context held the
    forgotten text) was still returned for the forgotten words by the context channels."""
    with Memory.open(settings=_settings(home)) as mem:
        t = datetime(2024, 5, 1, 10, tzinfo=UTC)
        a = mem.store("Zebra xylophone quartz marmalade", namespace="u", occurred_at=t)
        mem.store("I went for a walk afterwards", namespace="u", occurred_at=t)
        mem.sync()
        query = "xylophone quartz marmalade"
        for channel in ("lexical_context", "semantic_context"):
            assert mem.recall(query, "u", 3, weights={channel: 1.0})
        mem.forget(a.memory_id)
        mem.sync()
        for channel in ("lexical_context", "semantic_context"):
            assert mem.recall(query, "u", 3, weights={channel: 1.0}) == [], channel
        hits = mem.recall("a walk afterwards", "u", 3)
        assert [h.text for h in hits] == ["I went for a walk afterwards"]
        incremental = mem.checksums()
        mem.rebuild()
        assert mem.checksums() == incremental
