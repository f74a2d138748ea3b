"""The topology as data: which actor follows which stream and writes which.

Both runners execute the same topology: the inline runner in this process, the Ray runner
as named, restartable actors. Factories are module-level functions so that Ray can pickle a
node and build its actor in a worker process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.embedder import EmbedderActor, History
from actors.follower import Follower
from pipeline.config import Settings

Factory = Callable[[Settings, History | None], Follower]


def make_embedder(settings: Settings, history: History | None) -> Follower:
    return EmbedderActor(settings.embedder, history=history)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    upstream: str
    output: str
    make: Factory


@dataclass(frozen=True, slots=True)
class Topology:
    nodes: tuple[Node, ...]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


DEFAULT_TOPOLOGY = Topology(nodes=(Node("embedder", "input", "embedded", make_embedder),))
