"""Fusion and the read model's arrays, against plain-Python references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mnemoflow.actors.query.fusion import fuse, propagate, spread, top
from mnemoflow.actors.query.readparts import Adjacency, Lookup

pairs = st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), max_size=60)
scores = st.dictionaries(st.integers(0, 30), st.floats(-5, 5), min_size=1, max_size=20)


def _links(edges: list[tuple[int, int]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for a, b in edges:
        out.setdefault(a, []).append(b)
        out.setdefault(b, []).append(a)
    return out


def _adjacency(edges: list[tuple[int, int]]) -> Adjacency:
    src = np.array([a for a, _ in edges] + [b for _, b in edges], np.int64)
    dst = np.array([b for _, b in edges] + [a for a, _ in edges], np.int64)
    return Adjacency(src, dst, np.ones(len(src)))


@settings(max_examples=200, deadline=None)
@given(edges=pairs, fused=scores, share=st.floats(0.1, 2))
def test_propagate_equals_the_per_memory_definition(
    edges: list[tuple[int, int]], fused: dict[int, float], share: float
) -> None:
    links = _links(edges)
    floor = min(fused.values())
    reached = set(fused) | {n for d in fused for n in links.get(d, ())}
    expected = dict(fused)
    for doc in reached:
        near = links.get(doc)
        if near:
            best = max(fused.get(n, floor) for n in near)
            expected[doc] = fused.get(doc, floor) + share * max(best, floor)
    got = propagate(fused, _adjacency(edges), share)
    assert got.keys() == expected.keys()
    assert all(abs(got[d] - expected[d]) < 1e-9 for d in got)


@given(edges=pairs, docs=st.lists(st.integers(0, 40), max_size=15))
def test_adjacency_expands_every_edge_of_every_asked_memory(
    edges: list[tuple[int, int]], docs: list[int]
) -> None:
    adjacency = Adjacency(
        np.array([a for a, _ in edges], np.int64),
        np.array([b for _, b in edges], np.int64),
        np.arange(len(edges), dtype=float),
    )
    owner, near, weight = adjacency.expand(np.array(docs, np.int64))
    got = sorted(zip(owner.tolist(), near.tolist(), weight.tolist(), strict=True))
    expected = sorted(
        (i, b, float(w)) for i, d in enumerate(docs) for w, (a, b) in enumerate(edges) if a == d
    )
    assert got == expected


def test_lookup_of_nothing_and_of_something() -> None:
    empty = Lookup.of(np.zeros(0, np.int64), np.zeros(0, object))
    hit, values = empty.get(np.array([1, 2], np.int64))
    assert not hit.any() and len(values) == 2
    some = Lookup.of(np.array([5, 1], np.int64), np.array(["b", "a"], object))
    hit, values = some.get(np.array([1, 3, 5], np.int64))
    assert hit.tolist() == [True, False, True] and values[0] == "a" and values[2] == "b"


def test_sparse_channels_score_absence_as_zero() -> None:
    raw = {"semantic": {1: 0.9, 2: 0.5, 3: 0.1}, "entity": {3: 2.0}}
    fused = fuse(raw, {"semantic": 1.0, "entity": 1.0})
    assert fused[3] > fused[2]  # one entity hit lifts it: z over every candidate, not one
    rrf = fuse(raw, {"semantic": 1.0, "entity": 1.0}, rrf_k=60)
    assert rrf[1] == 1 / 61 and rrf[3] == 1 / 63 + 1 / 61


def test_spread_and_top() -> None:
    fused = {1: 3.0, 2: 1.0, 3: 0.0, 4: -1.0}
    edges = Adjacency(np.array([1, 2], np.int64), np.array([9, 8], np.int64), np.array([1.0, 1.0]))
    activation = spread(fused, edges, seeds=2)
    assert activation[9] == 1.0 and 0 < activation[8] < 1  # the best seed passes the most
    assert list(top(fused, 2)) == [1, 2]
