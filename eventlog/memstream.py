"""A stream held in memory: the second implementation the contract suite runs against."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

import pyarrow as pa

from mnemoflow.eventlog.schema import GENESIS_HASH, Draft, Receipt, Record, records_to_batch
from mnemoflow.eventlog.tablefilter import filter_table
from mnemoflow.eventlog.verify import Chunk, VerifyReport, verify_chunks
from mnemoflow.eventlog.writer import ChainWriter, utc_now


class InMemoryStream:
    def __init__(self, name: str, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._name = name
        self._records: list[Record] = []
        self._by_event: dict[str, Record] = {}
        self._lock = threading.Lock()
        self._writer = ChainWriter(
            name,
            tail_position=0,
            tail_hash=GENESIS_HASH,
            tail_recorded_at=None,
            find=self._find,
            persist=self._persist,
            clock=clock,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def last_position(self) -> int:
        return self._writer.position

    def append(self, drafts: Sequence[Draft]) -> list[Receipt]:
        return self._writer.append(drafts)

    def _find(self, event_ids: Sequence[str]) -> dict[str, Record]:
        with self._lock:
            return {e: self._by_event[e] for e in event_ids if e in self._by_event}

    def _persist(self, records: list[Record]) -> None:
        with self._lock:
            self._records.extend(records)
            self._by_event.update((r.event_id, r) for r in records)

    def read(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        memory_id: str | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        with self._lock:
            records = self._records[max(start, 1) - 1 : stop]
        for r in records:
            if (
                (namespace is None or r.namespace == namespace)
                and (memory_id is None or r.memory_id == memory_id)
                and (kind is None or r.kind == kind)
            ):
                yield r

    def scan(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        kind: str | None = None,
        memory_id: str | None = None,
    ) -> Iterator[pa.Table]:
        with self._lock:
            table = pa.Table.from_batches([records_to_batch(self._records)])
        yield filter_table(
            table, start=start, stop=stop, namespace=namespace, kind=kind, memory_id=memory_id
        )

    def last(
        self,
        start: int = 1,
        stop: int | None = None,
        *,
        namespace: str | None = None,
        kind: str | None = None,
    ) -> Record | None:
        *_, found = [None, *self.read(start, stop, namespace=namespace, kind=kind)]
        return found

    def get(self, event_id: str) -> Record | None:
        with self._lock:
            return self._by_event.get(event_id)

    def refresh(self) -> int:
        """Nothing to take in: every append happens in this object."""
        return self.last_position

    def tail(self) -> Record | None:
        with self._lock:
            return self._records[-1] if self._records else None

    def verify(self) -> VerifyReport:
        with self._lock:
            batch = records_to_batch(self._records)
        return verify_chunks(self._name, [Chunk("memory", 1, batch)])

    def close(self) -> None:
        """Nothing to release."""
