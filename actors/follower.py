"""What every deriving actor is: a follower of one stream that writes one other stream.

An actor is a plain class. Its `process` step takes a batch of upstream events with their
payloads opened (None where erased) and returns derived events, each naming the upstream
position it came from. A runner (inline or Ray) reads the upstream stream from the actor's
resume point, calls `process`, seals and appends the output; derived event ids are fixed by
(output stream, upstream position, index), so a replayed batch appends nothing twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.payloads import Payload

__all__ = [
    "Derived",
    "Follower",
    "Lookups",
    "NotReady",
    "Opened",
    "Stateful",
    "derived_event_id",
]


@dataclass(frozen=True, slots=True)
class Derived:
    """One event an actor derived from the upstream event at `source_position`."""

    kind: str
    namespace: str
    memory_id: str | None
    payload: Payload
    source_position: int
    occurred_at: datetime | None = None


class Follower(Protocol):
    """A deriving actor: follows `upstream`, writes `output`."""

    @property
    def name(self) -> str: ...

    @property
    def upstream(self) -> str: ...

    @property
    def output(self) -> str: ...

    def process(self, batch: Sequence[Opened]) -> list[Derived]: ...


@runtime_checkable
class Closable(Protocol):
    """A follower holding something to give back when its runner stops (connections)."""

    def close(self) -> None: ...


def close_followers(followers: Iterable[object]) -> None:
    """Close each follower that holds something, whatever another one's close raises."""
    with contextlib.ExitStack() as parts:
        for follower in followers:
            if isinstance(follower, Closable):
                parts.callback(follower.close)


@runtime_checkable
class Stateful(Protocol):
    """A follower whose step depends on what it saw before (the linker's indexes). Its state
    is a fold over its upstream: before its first step a runner feeds it the upstream prefix
    it has already processed, through `observe`, which must change the state exactly as
    `process` does and derive nothing. A follower with an `observes` attribute (a set of
    kinds) is fed only the events of those kinds."""

    restored: bool

    def observe(self, batch: Sequence[Opened]) -> None: ...


class NotReady(Exception):
    """A lookup needs a derivation another actor has not made yet: try the batch later."""


class Lookups(Protocol):
    """An actor's read-only view of other streams."""

    def previous_stored(self, namespace: str, before: int) -> Opened | None:
        """The last memory stored in the namespace before an input position."""
        ...

    def latest(self, stream: str, memory_id: str) -> Opened | None:
        """The memory's newest event in a stream, opened (None: it has none there)."""
        ...

    def embedded(self, input_positions: Sequence[int]) -> dict[int, Opened | None]:
        """The embedding derived from each input position (None: there is none — erased, or
        not a memory's text); raises NotReady while the embedder has not reached one."""
        ...

    def readable(self, key_id: str | None) -> bool:
        """Whether the key an event was sealed with still exists (not erased) now, in
        whichever process erased it: checked before text leaves the process."""
        ...


def derived_event_id(output: str, source_position: int, index: int) -> str:
    return f"{output}:{source_position}:{index}"
