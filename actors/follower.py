"""What every deriving actor is: a follower of one stream that writes one other stream.

An actor is a plain class. Its `process` step takes a batch of upstream events with their
payloads opened (None where erased) and returns derived events, each naming the upstream
position it came from. A runner (inline or Ray) reads the upstream stream from the actor's
resume point, calls `process`, seals and appends the output; derived event ids are fixed by
(output stream, upstream position, index), so a replayed batch appends nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from eventlog.opened import Opened
from eventlog.payloads import Payload

__all__ = ["Derived", "Follower", "Opened", "derived_event_id"]


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


def derived_event_id(output: str, source_position: int, index: int) -> str:
    return f"{output}:{source_position}:{index}"
