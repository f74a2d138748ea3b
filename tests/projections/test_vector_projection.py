"""The FAISS projection's fold: one vector per active memory, for its current text."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mnemoflow.projections.memstate import doc_id
from mnemoflow.projections.vector_projection import CONTEXT, VectorProjection, VectorSettings
from mnemoflow.projections.vectors import BruteForceIndex
from tests.projections.events import Events


def _ids(vp: VectorProjection, ns: str = "n") -> set[int]:
    index = vp._indexes.get((ns, "text"))
    return set() if index is None else set(index.export()[0].tolist())


def test_update_drops_the_stale_vector_until_the_new_one_arrives() -> None:
    vp, ev = VectorProjection(None), Events()
    a = ev.stored("a", "old text")
    vp.apply_input([a])
    vp.apply_embedded([ev.embedded(a)])
    assert _ids(vp) == {doc_id("a")}
    u = ev.updated("a", "new text")
    vp.apply_input([u])
    assert _ids(vp) == set()
    vp.apply_embedded([ev.embedded(u)])
    assert _ids(vp) == {doc_id("a")}


def test_stale_and_forgotten_embeddings_are_ignored() -> None:
    vp, ev = VectorProjection(None), Events()
    a, b = ev.stored("a", "x"), ev.stored("b", "y")
    u = ev.updated("a", "x2")
    f = ev.forgotten("b")
    vp.apply_input([a, b, u, f])
    vp.apply_embedded([ev.embedded(a), ev.embedded(b)])  # a's is for the old text; b forgotten
    assert _ids(vp) == set()
    vp.apply_embedded([ev.embedded(u)])
    assert _ids(vp) == {doc_id("a")}


def test_erasure_drops_the_namespace() -> None:
    vp, ev = VectorProjection(None), Events()
    a, b = ev.stored("a", "x", ns="alice"), ev.stored("b", "y", ns="bob")
    vp.apply_input([a, b])
    vp.apply_embedded([ev.embedded(a), ev.embedded(b)])
    vp.apply_input([ev.erased("alice")])
    assert _ids(vp, "alice") == set() and _ids(vp, "bob") == {doc_id("b")}
    assert vp.search("alice", np.ones(16, np.float32), 5) == []


def test_order_of_streams_does_not_change_the_result() -> None:
    """All input then all embeddings, or interleaved batch by batch: the same indexes."""
    ev = Events()
    inputs, embedded = [], []
    for i in range(40):
        s = ev.stored(f"m{i}", f"text {i}", ns=f"ns{i % 3}")
        inputs.append(s)
        embedded.append(ev.embedded(s))
        if i % 5 == 0:
            u = ev.updated(f"m{i}", f"text {i} v2", ns=f"ns{i % 3}")
            inputs.append(u)
            embedded.append(ev.embedded(u))
        if i % 7 == 0:
            inputs.append(ev.forgotten(f"m{i}", ns=f"ns{i % 3}"))
    exact = VectorSettings(storage="fp32")
    at_once = VectorProjection(None, exact, index_factory=BruteForceIndex)
    at_once.apply_input(inputs)
    at_once.apply_embedded(embedded)
    stepwise = VectorProjection(None, exact)  # FAISS, exact like brute force
    for k in range(0, len(inputs), 6):
        stepwise.apply_input(inputs[k : k + 6])
        ready = [
            e
            for e in embedded
            if e.record.causation.position <= inputs[min(k + 5, len(inputs) - 1)].record.position
        ]  # type: ignore[union-attr]
        stepwise.apply_embedded(
            [e for e in ready if e.record.position > stepwise.applied("embedded")]
        )
    stepwise.apply_embedded(
        [e for e in embedded if e.record.position > stepwise.applied("embedded")]
    )
    assert at_once.checksums() == stepwise.checksums()
    assert at_once.count() == 40 - len(range(0, 40, 7))


def test_snapshot_round_trip(tmp_path: Path) -> None:
    ev = Events()
    vp = VectorProjection(tmp_path / "faiss")
    stored = [ev.stored(f"m{i}", "t", ns=f"ns{i % 2}") for i in range(10)]
    vp.apply_input(stored)
    vp.apply_embedded([ev.embedded(s) for s in stored])
    vp.snapshot()
    again = VectorProjection(tmp_path / "faiss")
    assert again.checksums() == vp.checksums()
    assert again.applied("input") == 10 and again.applied("embedded") == 10
    later = ev.updated("m0", "t2", ns="ns0")  # and the fold state came back too
    again.apply_input([later])
    again.apply_embedded([ev.embedded(later)])
    assert again.count() == 10


def test_a_snapshot_is_written_again_only_after_something_was_applied(tmp_path: Path) -> None:
    """Snapshotting with nothing applied since the last snapshot (or since loading it) leaves
    the files as they are; one event applied, and the next snapshot is written anew."""
    ev = Events()
    vp = VectorProjection(tmp_path / "faiss")
    a = ev.stored("a", "t")
    vp.apply_input([a])
    vp.apply_embedded([ev.embedded(a)])
    vp.snapshot()
    manifest = tmp_path / "faiss" / "manifest.json"
    written = manifest.stat().st_ino
    vp.snapshot()
    again = VectorProjection(tmp_path / "faiss")
    again.snapshot()
    assert manifest.stat().st_ino == written
    b = ev.stored("b", "u")
    again.apply_input([b])
    again.snapshot()
    assert manifest.stat().st_ino != written
    assert VectorProjection(tmp_path / "faiss").applied("input") == 2


def _approximate(tmp_path: Path, settings: VectorSettings) -> tuple[VectorProjection, np.ndarray]:
    """A projection of 60 memories past `approximate_above`, one forgotten, snapshotted."""
    ev = Events()
    vp = VectorProjection(tmp_path / "faiss", settings)
    stored = [ev.stored(f"m{i}", "t") for i in range(60)]
    vp.apply_input(stored)
    vp.apply_embedded([ev.embedded(s) for s in stored])
    vp.apply_input([ev.forgotten("m3")])  # an HNSW tombstone survives the round trip
    vp.snapshot()
    return vp, ev.embedded(stored[7]).payload.array()  # type: ignore[union-attr]


def _answers_as(
    again: VectorProjection, vp: VectorProjection, query: np.ndarray, kind: str
) -> None:
    assert again._indexes[("n", "text")].kind == kind  # type: ignore[attr-defined]
    assert again.checksums() == vp.checksums()
    assert again.search("n", query, 5) == vp.search("n", query, 5)
    assert doc_id("m3") not in {d for d, _ in again.search("n", query, 60)}


def test_an_ivf_snapshot_keeps_its_index(tmp_path: Path) -> None:
    """Past `approximate_above` the snapshot stores the IVF index (its lists and codes), and
    loading it answers as the index did, without learning the lists again."""
    settings = VectorSettings(approximate_above=20, nprobe=1)
    vp, query = _approximate(tmp_path, settings)
    (npz,) = (tmp_path / "faiss").glob("index*.npz")
    with np.load(npz) as arrays:
        assert set(arrays.files) == {"ivf", "trained_at", "dim"}
    _answers_as(VectorProjection(tmp_path / "faiss", settings), vp, query, "ivf")
    # Configured for HNSW since: the snapshot's vectors make an HNSW index.
    hnsw = VectorSettings(approximate_above=20, approximate="hnsw", ef_search=256)
    _answers_as(VectorProjection(tmp_path / "faiss", hnsw), vp, query, "hnsw")


def test_an_hnsw_snapshot_keeps_its_graph(tmp_path: Path) -> None:
    """Past `approximate_above` the snapshot stores the HNSW graph (not the raw vectors), and
    loading it answers as the index did, without rebuilding the graph."""
    settings = VectorSettings(approximate_above=20, approximate="hnsw", ef_search=256)
    vp, query = _approximate(tmp_path, settings)
    (npz,) = (tmp_path / "faiss").glob("index*.npz")
    with np.load(npz) as arrays:
        assert set(arrays.files) == {"graph_zstd", "graph_bytes", "slot_ids", "dim"}
        graph = pa.Codec("zstd").decompress(
            arrays["graph_zstd"], decompressed_size=int(arrays["graph_bytes"][0]), asbytes=True
        )
        assert len(arrays["graph_zstd"]) < len(graph)
        old = {"graph": np.frombuffer(graph, np.uint8)} | {
            k: arrays[k] for k in ("slot_ids", "dim")
        }
    for _format in ("zstd", "as snapshots stored it before"):
        _answers_as(VectorProjection(tmp_path / "faiss", settings), vp, query, "hnsw")
        np.savez(npz, **old)
    # Configured for IVF since (every list scanned: the same answers).
    ivf = VectorSettings(approximate_above=20, nprobe=1000)
    _answers_as(VectorProjection(tmp_path / "faiss", ivf), vp, query, "ivf")


def test_a_forgotten_memory_leaves_the_context_vector_of_the_one_after_it(tmp_path: Path) -> None:
    """The context vector of the memory stored after a forgotten one embeds the forgotten text:
    it goes, whichever of the forget and the embedding is folded first, and across a snapshot."""
    ev = Events()
    a, b, c = (ev.stored(m, f"text {m}") for m in "abc")
    embedded = [ev.embedded(b, context_of=a), ev.embedded(c, context_of=b)]
    forgotten = ev.forgotten("a")
    query = embedded[0].payload.context_array()  # type: ignore[union-attr]
    assert query is not None

    def contexts(vp: VectorProjection) -> set[int]:
        return {d for d, _ in vp.search("n", query, 10, CONTEXT)}

    forget_first = VectorProjection(None, index_factory=BruteForceIndex)
    forget_first.apply_input([a, b, c, forgotten])
    forget_first.apply_embedded(embedded)
    forget_last = VectorProjection(tmp_path / "faiss", index_factory=BruteForceIndex)
    forget_last.apply_input([a, b, c])
    forget_last.apply_embedded(embedded)
    assert contexts(forget_last) == {doc_id("b"), doc_id("c")}
    forget_last.snapshot()
    forget_last = VectorProjection(tmp_path / "faiss", index_factory=BruteForceIndex)
    forget_last.apply_input([forgotten])
    for vp in (forget_first, forget_last):
        assert contexts(vp) == {doc_id("c")}  # b's context held a's text; c's holds b's
        assert {d for d, _ in vp.search("n", query, 10)} == {doc_id("b"), doc_id("c")}
    assert forget_first.checksums() == forget_last.checksums()


def _snapshotted(tmp_path: Path, n: int) -> VectorProjection:
    ev = Events()
    vp = VectorProjection(tmp_path / "faiss")
    stored = [ev.stored(f"m{i}", "t") for i in range(n)]
    vp.apply_input(stored)
    vp.apply_embedded([ev.embedded(s) for s in stored])
    vp.snapshot()
    return vp


def test_a_swap_cut_short_between_its_renames_is_finished_at_open(tmp_path: Path) -> None:
    """A snapshot is swapped in by two renames (the old one aside, the new one in): a crash
    between them left no snapshot under the projection's name, so the next process replayed
    every vector from the log. The new snapshot, complete and durable before the first
    rename, is taken; what is left of the old one is removed."""
    old = _snapshotted(tmp_path / "then", 3)
    new = _snapshotted(tmp_path / "now", 5)
    directory = tmp_path / "faiss"
    shutil.copytree(tmp_path / "then" / "faiss", directory.with_name("faiss.old"))
    shutil.copytree(tmp_path / "now" / "faiss", directory.with_name("faiss.tmp"))
    again = VectorProjection(directory)
    assert again.checksums() == new.checksums() != old.checksums()
    assert again.applied("input") == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faiss", "now", "then"]


def test_a_snapshot_left_half_written_beside_a_whole_one_is_removed(tmp_path: Path) -> None:
    """Cut short before its swap: the snapshot in place is the one, the half-written one
    (it may hold vectors of memories erased since) is removed at open."""
    vp = _snapshotted(tmp_path, 4)
    half = tmp_path / "faiss.tmp"
    half.mkdir()
    (half / "index0.npz").write_bytes(b"PK\x03\x04 cut")
    again = VectorProjection(tmp_path / "faiss")
    assert again.checksums() == vp.checksums() and not half.exists()


def test_every_snapshot_file_is_durable_before_the_swap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fsync of each file and of the new directory comes before the first rename: after a
    power cut the snapshot under the projection's name is whole, never empty files."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    def rename(self: Path, target: Path) -> Path:
        synced.append(f"rename {self.name}")
        return real_rename(self, target)

    real_rename = Path.rename
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "rename", rename)
    _snapshotted(tmp_path, 3)
    first_rename = next(i for i, s in enumerate(synced) if s.startswith("rename"))
    before = set(synced[:first_rename])
    written = tmp_path / "faiss"
    files = {str(tmp_path / "faiss.tmp" / p.name) for p in written.iterdir()}
    assert files <= before, files - before
    assert str(tmp_path / "faiss.tmp") in before
    assert str(tmp_path) in synced[first_rename:]  # and the renames themselves
