"""Linker, consolidator and decay, on handmade events: edges, decisions and schedules, and
state restored by `observe` equal to state built by `process`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from mnemoflow.actors import linker as linker_module
from mnemoflow.actors.consolidator import ConsolidatorActor, ConsolidatorSettings
from mnemoflow.actors.decay import (
    AGAIN,
    GOOD,
    DecayActor,
    DecaySettings,
    W,
    first,
    retrievability,
    review,
    zone,
)
from mnemoflow.actors.extraction import extract
from mnemoflow.actors.extractor import to_payload
from mnemoflow.actors.follower import Derived, NotReady
from mnemoflow.actors.linker import LinkerActor, LinkerSettings
from mnemoflow.eventlog.derived import (
    Edge,
    Input,
    MemoryConsolidated,
    MemoryLinked,
    MemoryScheduled,
)
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import to_micros
from tests.projections.events import T0, Events


class FakeLookups:
    """Embeddings by input position, as the embedded stream would give them, and each
    memory's events in the other streams (what a runner appended)."""

    def __init__(self) -> None:
        self.opened: dict[int, Opened] = {}
        self.reached = 10**9
        self.streams: dict[str, list[Opened]] = {}

    def previous_stored(self, namespace: str, before: int) -> Opened | None:
        return None

    def latest(self, stream: str, memory_id: str) -> Opened | None:
        mine = [o for o in self.streams.get(stream, []) if o.record.memory_id == memory_id]
        return mine[-1] if mine else None

    def append(self, events: Events, stream: str, batch: list[Opened], out: list[Derived]) -> None:
        """As a runner appends an actor's output once its batch is processed."""
        sources = {o.record.position: o for o in batch}
        self.streams.setdefault(stream, []).extend(
            events.derived(stream, d.kind, sources[d.source_position], d.payload) for d in out
        )

    def readable(self, key_id: str | None) -> bool:
        return True

    def embedded(self, input_positions: Sequence[int]) -> dict[int, Opened | None]:
        if max(input_positions, default=0) > self.reached:
            raise NotReady("not yet")
        return {p: self.opened.get(p) for p in input_positions}


def _unit(seed: int, base: np.ndarray | None = None, noise: float = 1.0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(16).astype(np.float32)
    if base is not None:
        v = base + noise * v
    return (v / np.linalg.norm(v)).astype(np.float32)


class World:
    """Stores texts and extracts them, giving each an embedding."""

    def __init__(self) -> None:
        self.events = Events()
        self.lookups = FakeLookups()
        self.extracted: list[Opened] = []

    def store(self, memory_id: str, text: str, vector: np.ndarray, ns: str = "n") -> None:
        stored = self.events.stored(memory_id, text, ns)
        self.lookups.opened[stored.record.position] = self.events.embedded(stored, vector=vector)
        payload = to_payload(extract(text, T0), "rules")
        self.extracted.append(self.events.derived("extracted", "memory.extracted", stored, payload))


def _edges(derived: Derived) -> set[tuple[str, str]]:
    assert isinstance(derived.payload, MemoryLinked)
    return {(e.target, e.kind) for e in derived.payload.edges}


def test_linker_links_entities_similar_memories_and_claims() -> None:
    w = World()
    base = _unit(1)
    w.store("a", "Alice: I live in Paris and visit the Louvre.", base)
    w.store("b", "Bob: The Louvre was closed.", _unit(2))
    w.store("c", "Alice: I moved to Berlin!", _unit(3))
    w.store("d", "Dan: I live in Paris and visit the Louvre!", _unit(4, base, 0.05))
    w.store("e", "Alice: I don't live in Berlin anymore.", _unit(5))
    out = LinkerActor(LinkerSettings(similar_threshold=0.9), w.lookups).process(w.extracted)
    assert [d.memory_id for d in out] == ["a", "b", "c", "d", "e"]
    assert _edges(out[0]) == set()
    assert _edges(out[1]) == {("a", "entity")}  # the Louvre; Alice is the speaker of a, not b
    assert ("a", "updates") in _edges(out[2])  # Alice's residence: Paris -> Berlin
    assert {("a", "similar"), ("b", "entity"), ("a", "entity")} <= _edges(out[3])
    similar = next(e for e in out[3].payload.edges if e.kind == "similar")  # type: ignore[union-attr]
    assert similar.weight > 0.9 and similar.hamming is not None and similar.hamming < 20
    assert ("c", "contradicts") in _edges(out[4])  # the same value, denied


def test_similar_sentences_with_other_dates_or_names_are_other_facts() -> None:
    """Near-identical vectors and SimHashes, but another month or another pet's name: the
    linker marks the edge, and the consolidator does not merge them."""
    w = World()
    base = _unit(7)
    w.store("june", "Hana adopted a dog named Nala last June.", base)
    w.store("july", "Hana adopted a dog named Nala last July.", _unit(8, base, 0.01))
    w.store("again", "Hana adopted a dog named Nala last June!", _unit(9, base, 0.01))
    w.store("miso", "Hana adopted a dog named Miso last June.", _unit(10, base, 0.01))
    out = LinkerActor(LinkerSettings(similar_threshold=0.9), w.lookups).process(w.extracted)

    def similar(d: Derived, target: str) -> Edge:
        assert isinstance(d.payload, MemoryLinked)
        return next(e for e in d.payload.edges if e.kind == "similar" and e.target == target)

    assert similar(out[1], "june").same_facts is False
    assert similar(out[2], "june").same_facts is True
    assert similar(out[3], "june").same_facts is False
    events = Events()
    decisions = [
        ConsolidatorActor().process([_linked(events, [similar(d, "june")])]) for d in out[1:]
    ]
    assert [len(made) for made in decisions] == [0, 1, 0]  # only the repeat is merged
    assert isinstance(decisions[1][0].payload, MemoryConsolidated)
    assert decisions[1][0].payload.decision == "duplicate"


def test_linker_keeps_namespaces_apart() -> None:
    w = World()
    w.store("a", "I visited the Louvre.", _unit(1), ns="one")
    w.store("b", "I visited the Louvre.", _unit(1), ns="two")
    out = LinkerActor(LinkerSettings(), w.lookups).process(w.extracted)
    assert _edges(out[1]) == set()


def test_linker_state_restored_by_observe_equals_state_built_by_process() -> None:
    w = World()
    for i in range(12):
        w.store(f"m{i}", f"Eve: I went to Lisbon with Zed {i % 3} times.", _unit(i % 4))
    whole = LinkerActor(LinkerSettings(), w.lookups).process(w.extracted)
    restarted = LinkerActor(LinkerSettings(), w.lookups)
    restarted.observe(w.extracted[:7])
    assert restarted.process(w.extracted[7:]) == whole[7:]


def _clusters() -> World:
    """Near duplicates in clusters around the threshold, memories re-stored (their newest
    vector counts, the older one is no candidate), and two namespaces."""
    w = World()
    rng = np.random.default_rng(5)
    centres = [_unit(100 + c) for c in range(4)]
    for i in range(64):
        memory_id = f"m{rng.integers(0, 40)}"  # about a third are stored again
        vector = _unit(i, centres[i % 4], float(rng.uniform(0.02, 0.2)))
        w.store(memory_id, f"Note {i} about item {i % 4}.", vector, ns="one" if i % 5 else "two")
    return w


_CLUSTERED = LinkerSettings(similar_threshold=0.85, similar_k=6)


def _cut_up(w: World, cut: int) -> list[Derived]:
    linker = LinkerActor(_CLUSTERED, w.lookups)
    pieces = [w.extracted[i : i + cut] for i in range(0, len(w.extracted), cut)]
    return [d for piece in pieces for d in linker.process(piece)]


@pytest.mark.parametrize("cut", [1, 3, 7, 64])
def test_similar_edges_do_not_depend_on_how_batches_are_cut(cut: int) -> None:
    """Scores within a batch and against the memories before it are the same numbers."""
    w = _clusters()
    whole = LinkerActor(_CLUSTERED, w.lookups).process(w.extracted)
    similar = [e for d in whole for e in d.payload.edges if e.kind == "similar"]  # type: ignore[union-attr]
    assert len(similar) > 80 and min(e.weight for e in similar) < 0.87  # not vacuous
    assert _cut_up(w, cut) == whole


def test_similar_edges_do_not_depend_on_the_vector_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The linker keeps vectors in fixed blocks of rows; with blocks of 5 rows instead of
    thousands, the earlier memories span many blocks and every edge stays the same."""
    w = _clusters()
    whole = LinkerActor(_CLUSTERED, w.lookups).process(w.extracted)
    monkeypatch.setattr(linker_module._Matrix, "_BLOCK", 5)
    assert _cut_up(w, 7) == whole


def test_linker_waits_for_the_embedder() -> None:
    w = World()
    w.store("a", "I visited the Louvre.", _unit(1))
    w.lookups.reached = 0
    with pytest.raises(NotReady):
        LinkerActor(LinkerSettings(), w.lookups).process(w.extracted)


def _linked(events: Events, edges: list[Edge]) -> Opened:
    source = events.stored("new", "x")
    return events.derived("linked", "memory.linked", source, MemoryLinked(edges=edges), "extracted")


def test_consolidator_merges_near_duplicates_and_supersedes_updates() -> None:
    events = Events()
    near = Edge(target="old", kind="similar", weight=0.99, hamming=2)
    far = Edge(target="other", kind="similar", weight=0.99, hamming=30)
    update = Edge(target="older", kind="updates", weight=1.0, via="residence")
    linked = _linked(events, [near, far, update])
    (merge,) = ConsolidatorActor().process([linked])
    assert isinstance(merge.payload, MemoryConsolidated)
    assert (merge.payload.decision, merge.payload.target) == ("duplicate", "old")
    assert merge.payload.inputs[0] == Input(stream="linked", position=linked.record.position)
    assert merge.payload.inputs[1].stream == "extracted"
    (supersede,) = ConsolidatorActor().process([_linked(events, [far, update])])
    assert isinstance(supersede.payload, MemoryConsolidated)
    assert (supersede.payload.decision, supersede.payload.target) == ("supersedes", "older")
    assert "residence" in supersede.payload.reason
    quiet = ConsolidatorActor(ConsolidatorSettings(supersede=False))
    assert quiet.process([_linked(events, [far, update])]) == []


def test_fsrs_reviews_follow_the_published_rules() -> None:
    s = first(GOOD, 0)
    assert s.stability == W[2] and s.reps == 1
    assert retrievability(s.stability, s.stability) == pytest.approx(0.9)
    day = 86_400 * 1_000_000
    good = review(s, GOOD, 4 * day)
    again = review(s, AGAIN, 4 * day)
    assert good.stability > s.stability and good.reps == 2 and good.lapses == 0
    assert again.stability < s.stability and again.lapses == 1
    assert again.difficulty > s.difficulty >= good.difficulty
    # Reviewing later (lower retrievability) grows stability more.
    assert review(s, GOOD, 10 * day).stability > good.stability
    settings = DecaySettings()
    assert [zone(r, settings) for r in (0.95, 0.7, 0.4, 0.1)] == [
        "active",
        "warm",
        "cold",
        "archived",
    ]


def test_decay_schedules_from_event_times_only() -> None:
    events = Events()
    stored = events.stored("m", "x")
    feedback = [events.feedback("m", True), events.feedback("m", False)]
    unknown = events.feedback("unknown", True)  # no schedule: nothing derived
    in_one = DecayActor(FakeLookups()).process([stored, *feedback, unknown])
    payloads = [d.payload for d in in_one]
    assert all(isinstance(p, MemoryScheduled) for p in payloads)
    assert [p.grade for p in payloads] == [3, 3, 1]  # type: ignore[union-attr]
    assert [p.reps for p in payloads] == [1, 2, 3]  # type: ignore[union-attr]
    when = stored.record.occurred_at
    assert when is not None and payloads[0].reviewed_at == to_micros(when)  # type: ignore[union-attr]
    # Cut into batches, each appended before the next: a new actor (a restart) reads the
    # schedule back from the decay stream and derives the same events.
    lookups = FakeLookups()
    batches = [[stored], feedback[:1], [feedback[1], unknown]]
    cut: list[Derived] = []
    for batch in batches:
        out = DecayActor(lookups).process(batch)
        lookups.append(events, "decay", batch, out)
        cut += out
    assert cut == in_one


CONTRADICTIONS = [
    ("I like sushi.", "I don't like sushi."),
    ("Mia loves jazz.", "Mia hates jazz."),
    ("Sam always walks to work.", "Sam never walks to work."),
    ("Lee has 2 cats.", "Lee has 3 cats."),
    ("The bakery is open on Sundays.", "The bakery is closed on Sundays."),
    ("Ana can swim.", "Ana cannot swim."),
]


@pytest.mark.parametrize(("before", "after"), CONTRADICTIONS)
def test_a_contradiction_is_never_merged_as_a_duplicate(before: str, after: str) -> None:
    """Vectors and SimHashes as near as a repeat's (the real model gives a one-word denial in
    a long text cosine 0.99, and SimHash drops "not"), but a negation, an opposite or another
    number: other facts, so both memories stay."""
    w = World()
    base = _unit(11)
    w.store("before", before, base)
    w.store("after", after, _unit(12, base, 0.001))
    out = LinkerActor(LinkerSettings(similar_threshold=0.9), w.lookups).process(w.extracted)
    assert isinstance(out[1].payload, MemoryLinked)
    similar = next(e for e in out[1].payload.edges if e.kind == "similar")
    assert similar.same_facts is False
    decisions = ConsolidatorActor().process([_linked(Events(), list(out[1].payload.edges))])
    assert all(d.payload.decision != "duplicate" for d in decisions)  # type: ignore[union-attr]


def test_a_repeat_is_still_merged() -> None:
    w = World()
    base = _unit(13)
    w.store("before", "I like sushi.", base)
    w.store("after", "I like sushi!", _unit(14, base, 0.001))
    out = LinkerActor(LinkerSettings(similar_threshold=0.9), w.lookups).process(w.extracted)
    assert isinstance(out[1].payload, MemoryLinked)
    (merge,) = ConsolidatorActor().process([_linked(Events(), list(out[1].payload.edges))])
    assert merge.payload.decision == "duplicate"  # type: ignore[union-attr]


def test_a_similar_edge_to_a_memory_it_contradicts_is_no_duplicate() -> None:
    """Whatever the texts, the linker's own `contradicts` or `updates` edge wins."""
    near = Edge(target="old", kind="similar", weight=0.99, hamming=0, same_facts=True)
    for kind in ("contradicts", "updates"):
        denial = Edge(target="old", kind=kind, weight=1.0, via="likes")  # type: ignore[arg-type]
        (decision,) = ConsolidatorActor().process([_linked(Events(), [near, denial])])
        assert decision.payload.decision == "supersedes"  # type: ignore[union-attr]
