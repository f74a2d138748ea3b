"""Namespace isolation as a property: whatever is stored into several namespaces, a recall
in one never returns another's memory — on every channel, the graph included (the linker
links memories by shared entities and by similarity, so a leak would show there first)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnemoflow import Memory
from mnemoflow.actors.query.engine import CHANNELS

# Sentences that share people, places and words across namespaces on purpose.
PEOPLE = ["Alice", "Bob", "Chen", "Dara"]
FACTS = [
    "{p} moved to Paris in May.",
    "{p} adopted a cat named Miso.",
    "{p} works at Initech as a designer.",
    "{p} is allergic to peanuts.",
    "{p} met {q} at the Paris climbing gym.",
    "{p} sold the old bike to {q}.",
]
QUERIES = ["Where did Alice move?", "cat Miso", "Initech designer", "Paris", "bike", "peanuts"]


def _only(**weights: float) -> dict[str, float]:
    return {channel: weights.get(channel, 0.0) for channel in CHANNELS}


# All channels, then each alone, then the graph first: a leak in one channel would otherwise
# be hidden by fusion.
CHANNEL_WEIGHTS = [
    None,
    _only(semantic=1.0),
    _only(lexical=1.0),
    _only(entity=1.0),
    _only(semantic=0.1, graph=5.0),
]

_examples = itertools.count()


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memory]:
    with Memory.open(home=tmp_path_factory.mktemp("isolation") / "home") as opened:
        yield opened


stores = st.lists(
    st.tuples(
        st.integers(0, 2),  # which namespace
        st.sampled_from(FACTS),
        st.sampled_from(PEOPLE),
        st.sampled_from(PEOPLE),
    ),
    min_size=2,
    max_size=12,
)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(stores=stores, query=st.sampled_from(QUERIES))
def test_a_recall_never_crosses_namespaces(
    mem: Memory, stores: list[tuple[int, str, str, str]], query: str
) -> None:
    example = next(_examples)
    names = [f"iso{example}-{i}" for i in range(3)]
    owned: dict[str, set[str]] = {name: set() for name in names}
    for which, fact, p, q in stores:
        receipt = mem.store(fact.format(p=p, q=q), names[which])
        owned[names[which]].add(receipt.memory_id or "")
    mem.sync()
    for name in names:
        if not owned[name]:
            continue
        for weights in CHANNEL_WEIGHTS:
            hits = mem.recall(query, name, k=10, weights=weights)
            assert {h.memory_id for h in hits} <= owned[name], (name, weights)
            assert all(h.namespace == name for h in hits)
