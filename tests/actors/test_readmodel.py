"""The read model kept across changes of the projections: after each batch, the rows of the
memories it changed are laid over the model read before, and the result equals a model read
whole from the same projection."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mnemoflow.actors.extraction import extract
from mnemoflow.actors.extractor import to_payload
from mnemoflow.actors.query.readmodel import NamespaceModel, ReadModel
from mnemoflow.eventlog.derived import (
    Edge,
    Input,
    MemoryConsolidated,
    MemoryLinked,
    MemoryScheduled,
)
from mnemoflow.eventlog.opened import Opened
from mnemoflow.projections.duck import DuckProjection
from mnemoflow.projections.memstate import doc_id
from tests.projections.events import T0, Events

PEOPLE = ["Alice", "Bob", "Chen", "Dana", "Emil"]
PLACES = ["Paris", "Lima", "Oslo", "Kyoto"]


class World:
    def __init__(self) -> None:
        self.duck, self.ev = DuckProjection(), Events()
        self.previous: dict[str, Opened] = {}

    def remember(self, memory_id: str, i: int, ns: str = "n", *, update: bool = False) -> None:
        """A memory stored (or updated) and everything the actors derive from it."""
        text = f"{PEOPLE[i % 5]} went to {PLACES[i % 4]} with {PEOPLE[(i + 2) % 5]} ({i})."
        ev = self.ev
        source = ev.updated(memory_id, text, ns) if update else ev.stored(memory_id, text, ns)
        before = self.previous.get(ns)
        self.duck.apply("input", [source])
        embedded = ev.embedded(source, context_of=None if update or before is None else before)
        self.duck.apply_embedded([embedded])
        extracted = ev.derived(
            "extracted", "memory.extracted", source, to_payload(extract(text, T0), "rules")
        )
        self.duck.apply_derived("extracted", [extracted])
        edges = []
        if before is not None and before.record.memory_id:
            edges = [Edge(target=before.record.memory_id, kind="entity", weight=1.0, via="x")]
        linked = ev.derived(
            "linked", "memory.linked", extracted, MemoryLinked(edges=edges), "extracted"
        )
        self.duck.apply_derived("linked", [linked])
        schedule = MemoryScheduled(
            stability=1.0 + i, difficulty=5.0, reviewed_at=i, reps=1, lapses=0, grade=3
        )
        self.duck.apply_derived(
            "decay", [ev.derived("decay", "memory.scheduled", source, schedule)]
        )
        if not update:
            self.previous[ns] = source

    def decide(self, memory_id: str, target: str, decision: str) -> None:
        source = self.ev.stored(memory_id, "decided", "n")
        payload = MemoryConsolidated(
            decision=decision,  # type: ignore[arg-type]
            target=target,
            reason="test",
            inputs=[Input(stream="linked", position=1)],
        )
        event = self.ev.derived("consolidated", "memory.consolidated", source, payload, "linked")
        self.duck.apply_derived("consolidated", [event])


def _same(kept: NamespaceModel, whole: NamespaceModel, docs: np.ndarray) -> None:
    for name in ("neighbours", "edges"):
        got, want = getattr(kept, name).expand(docs), getattr(whole, name).expand(docs)
        assert sorted(zip(*(a.tolist() for a in got), strict=True)) == sorted(
            zip(*(a.tolist() for a in want), strict=True)
        ), name
    for name in ("category", "stability"):
        (hit, values), (want_hit, want_values) = (
            getattr(kept, name).get(docs),
            getattr(whole, name).get(docs),
        )
        assert hit.tolist() == want_hit.tolist(), name
        assert values[hit].tolist() == want_values[want_hit].tolist(), name
    assert kept.superseded_by == whole.superseded_by
    assert kept.duplicate_of == whole.duplicate_of and kept.merged_into == whole.merged_into
    for person in PEOPLE + PLACES:
        key = person.casefold()
        assert kept.mentions([key], 100) == whole.mentions([key], 100), key
    assert kept.rows(docs) == whole.rows(docs)


def test_a_kept_model_laid_over_with_the_changed_rows_equals_a_whole_read() -> None:
    w = World()
    for i in range(30):
        w.remember(f"m{i}", i)
    w.remember("o1", 1, ns="other")
    model = ReadModel(lambda: w.duck.con, lambda: w.duck.changes)
    first = model.namespace("n")
    assert first.mentions(["alice"], 5)  # entities read now, laid over later
    docs = np.array([doc_id(f"m{i}") for i in range(40)] + [doc_id("new")], np.int64)
    assert first.rows(docs).keys() == {doc_id(f"m{i}") for i in range(30)}  # read now too
    for step in range(4):
        w.remember(f"m{30 + step}", 30 + step)  # a new memory after the last
        w.remember(f"m{step * 3}", 100 + step, update=True)  # another text, entities, schedule
        w.duck.apply("input", [w.ev.forgotten(f"m{step * 5 + 1}")])  # leaves the neighbours
        w.decide(f"m{step + 10}", f"m{step + 20}", "supersedes" if step % 2 else "duplicate")
        w.remember(f"o{step + 2}", step, ns="other")  # another namespace: not read for "n"
        kept = model.namespace("n")
        _same(kept, NamespaceModel(w.duck.con, "n"), docs)
    kept = model._kept.get("n")
    assert kept is not None and kept.base is first  # laid over, never read whole again
    assert len(kept.model.edges.expand(docs)[0]) > 0
    w.remember("f0", 0, ns="fresh")
    fresh = model.namespace("later")  # read while it has no memory yet, then laid over
    for i in range(3):
        w.remember(f"l{i}", i, ns="later")
        later = np.array([doc_id(f"l{j}") for j in range(3)], np.int64)
        _same(model.namespace("later"), NamespaceModel(w.duck.con, "later"), later)
    assert getattr(model._kept.get("later"), "base", None) is fresh
    w.duck.apply("input", [w.ev.erased("other")])  # an erasure: the next read is whole
    assert model.namespace("n") is not first
    assert getattr(model._kept.get("n"), "base", None) is not first


def test_at_most_so_many_namespaces_are_kept() -> None:
    """A service sees many namespaces: the least recently used model goes first."""
    w = World()
    for ns in ("a", "b", "c"):
        w.remember(f"{ns}1", 1, ns=ns)
    model = ReadModel(lambda: w.duck.con, lambda: w.duck.changes, keep=2)
    a = model.namespace("a")
    model.namespace("b")
    assert model.namespace("a") is a  # kept, and now the most recent
    model.namespace("c")  # "b" goes
    assert len(model._kept) == 2 and model._kept.get("b") is None
    assert model.namespace("a") is a


def test_rows_are_the_memories_as_hits_show_them() -> None:
    """Recall takes its hits' rows from the model: as DuckDB has them, less the context,
    the namespace's only, whatever their status; a doc with no memory has no row."""
    w = World()
    for i in range(4):
        w.remember(f"m{i}", i)
    w.remember("o1", 1, ns="other")
    w.duck.apply("input", [w.ev.forgotten("m1")])
    model = ReadModel(lambda: w.duck.con, lambda: w.duck.changes).namespace("n")
    ask = [doc_id(m) for m in ("m3", "m0", "m1", "o1", "never")]
    rows = model.rows(np.array(ask, np.int64))
    assert sorted(rows) == sorted(ask[:3])
    for memory_id in ("m0", "m1", "m3"):
        stored = w.duck.get(memory_id)
        assert stored is not None
        assert rows[doc_id(memory_id)] == replace(stored, context=None)
    assert rows[doc_id("m3")].context is None and w.duck.get("m3").context  # type: ignore[union-attr]
    assert rows[doc_id("m1")].status == "forgotten"
    assert model.rows(np.zeros(0, np.int64)) == {}
