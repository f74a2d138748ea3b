"""The topology as data: which actor follows which stream and writes which.

Both runners execute the same topology: the inline runner in this process, in the order
listed (so an actor that looks across to another stream finds it caught up), the Ray runner
as named, restartable Ray actors. There each lane is stepped on a thread of its own, its
nodes in the order listed: the embedder, which computes (outside the GIL, in ONNX Runtime),
in one lane, the five light actors, which mostly wait, in the other. By default both lanes
share one worker process (`[ray] worker_processes`). Factories are module-level functions
so that Ray can pickle a node and build its actor in a worker process.

    input ──► extractor ──► extracted ──► linker ──► linked ──► consolidator ──► consolidated
      │                                     ▲ (vectors, by input position)
      ├────► embedder ──► embedded ─────────┘
      ├────► decay ──► decay
      └────► patterns ──► patterns (from completed episodes)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mnemoflow.actors.consolidator import ConsolidatorActor
from mnemoflow.actors.decay import DecayActor
from mnemoflow.actors.embedder import EmbedderActor
from mnemoflow.actors.extractor import ExtractorActor
from mnemoflow.actors.follower import Follower, Lookups
from mnemoflow.actors.linker import LinkerActor
from mnemoflow.actors.patterns import PatternsActor
from mnemoflow.pipeline.api.config import Settings

Factory = Callable[[Settings, Lookups], Follower]


def make_extractor(settings: Settings, lookups: Lookups) -> Follower:
    return ExtractorActor(settings.llm, lookups=lookups)


def make_embedder(settings: Settings, lookups: Lookups) -> Follower:
    return EmbedderActor(settings.embedder, history=lookups)


def make_linker(settings: Settings, lookups: Lookups) -> Follower:
    return LinkerActor(settings.linker, lookups)


def make_consolidator(settings: Settings, lookups: Lookups) -> Follower:
    return ConsolidatorActor(settings.consolidator)


def make_decay(settings: Settings, lookups: Lookups) -> Follower:
    return DecayActor(lookups)


def make_patterns(settings: Settings, lookups: Lookups) -> Follower:
    return PatternsActor(settings.patterns)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    upstream: str
    output: str
    make: Factory
    num_cpus: float = 0.1  # Ray scheduling share: the embedder computes, the rest mostly wait
    # The nodes of one lane are stepped one after another on one thread; lanes go on at once.
    lane: str = "derive"


def lanes_of(nodes: Sequence[Node]) -> dict[str, tuple[Node, ...]]:
    """The nodes of each lane, in the order given."""
    out: dict[str, tuple[Node, ...]] = {}
    for node in nodes:
        out[node.lane] = (*out.get(node.lane, ()), node)
    return out


@dataclass(frozen=True, slots=True)
class Topology:
    nodes: tuple[Node, ...]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    @property
    def lanes(self) -> dict[str, tuple[Node, ...]]:
        """The nodes of each lane, in topology order."""
        return lanes_of(self.nodes)

    @property
    def streams(self) -> tuple[str, ...]:
        """Every derived stream, upstream before downstream."""
        return tuple(n.output for n in self.nodes)


DEFAULT_TOPOLOGY = Topology(
    nodes=(
        Node("extractor", "input", "extracted", make_extractor),
        Node("embedder", "input", "embedded", make_embedder, num_cpus=0.5, lane="embedder"),
        Node("linker", "extracted", "linked", make_linker),
        Node("consolidator", "linked", "consolidated", make_consolidator),
        Node("decay", "input", "decay", make_decay),
        Node("patterns", "input", "patterns", make_patterns),
    )
)

# The actors whose output recall needs for a memory to be found: each derives one event from
# every memory text. Read-your-writes waits for these.
RECALL_NEEDS = ("extracted", "embedded")
