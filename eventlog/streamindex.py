"""In-memory lookups of a stream: the active segment's, and the sealed segments' id keys."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mnemoflow.eventlog.schema import Record


class ActiveIndex:
    """The active segment's lookups, kept as it grows."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.memories: dict[str, list[int]] = {}
        self.namespaces: set[str] = set()
        self.kinds: set[str] = set()

    def add(self, records: Sequence[Record]) -> None:
        self._add(
            [r.position for r in records],
            [r.event_id for r in records],
            [r.memory_id for r in records],
            {r.namespace for r in records},
            {r.kind for r in records},
        )

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """The same from a batch's columns, without making its records (opening a stream
        indexes its whole active segment)."""
        self._add(
            batch.column("position").to_pylist(),
            batch.column("event_id").to_pylist(),
            batch.column("memory_id").to_pylist(),
            batch.column("namespace").unique().to_pylist(),
            batch.column("kind").unique().to_pylist(),
        )

    def _add(
        self,
        positions: list[int],
        event_ids: list[str],
        memory_ids: list[str | None],
        namespaces: Iterable[str],
        kinds: Iterable[str],
    ) -> None:
        self.events.update(zip(event_ids, positions, strict=True))
        for memory_id, position in zip(memory_ids, positions, strict=True):
            if memory_id is not None:
                self.memories.setdefault(memory_id, []).append(position)
        self.namespaces.update(namespaces)
        self.kinds.update(kinds)


class KeyedPositions:
    """Sorted 64-bit keys with their positions: id lookups across all sealed segments."""

    def __init__(self) -> None:
        self.keys: npt.NDArray[np.uint64] = np.empty(0, np.uint64)
        self.positions: npt.NDArray[np.int64] = np.empty(0, np.int64)

    def merge(self, keys: npt.NDArray[np.uint64], positions: npt.NDArray[np.int64]) -> None:
        all_keys = np.concatenate([self.keys, keys])
        order = np.argsort(all_keys, kind="stable")
        self.keys = all_keys[order]
        self.positions = np.concatenate([self.positions, positions])[order]

    def lookup(self, key: int) -> list[int]:
        lo = np.searchsorted(self.keys, np.uint64(key), side="left")
        hi = np.searchsorted(self.keys, np.uint64(key), side="right")
        return [int(p) for p in self.positions[lo:hi]]

    def lookup_many(self, keys: npt.NDArray[np.uint64]) -> list[int]:
        lo = np.searchsorted(self.keys, keys, side="left")
        hi = np.searchsorted(self.keys, keys, side="right")
        return [int(p) for a, b in zip(lo, hi, strict=True) for p in self.positions[a:b]]
