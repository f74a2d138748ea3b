"""The small interfaces the rest of the project sees: a readable stream, an appendable one."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import pyarrow as pa

from mnemoflow.eventlog.schema import Draft, Receipt, Record
from mnemoflow.eventlog.verify import VerifyReport


@runtime_checkable
class ReadableStream(Protocol):
    """A stream of events one can read by position, namespace, memory id and kind."""

    @property
    def name(self) -> str: ...

    @property
    def last_position(self) -> int:
        """The position of the newest event (0 when the stream is empty)."""
        ...

    def read(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        memory_id: str | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        """Events with start <= position <= stop matching every filter given, oldest first."""
        ...

    def scan(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        kind: str | None = None,
    ) -> Iterator[pa.Table]:
        """The same events as Arrow tables: the fast path for folds and replays."""
        ...

    def last(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        kind: str | None = None,
    ) -> Record | None:
        """The newest event with start <= position <= stop matching every filter given."""
        ...

    def get(self, event_id: str) -> Record | None: ...

    def tail(self) -> Record | None:
        """The newest record, or None when the stream is empty."""
        ...

    def refresh(self) -> int:
        """Take in what another process's writer appended; return the last position."""
        ...

    def verify(self) -> VerifyReport: ...


@runtime_checkable
class AppendableStream(ReadableStream, Protocol):
    """A stream with one writer that appends durably and idempotently."""

    def append(self, drafts: Sequence[Draft]) -> list[Receipt]:
        """Place and durably store the drafts; return one receipt per draft, in order."""
        ...

    def close(self) -> None: ...
