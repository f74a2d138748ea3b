"""In-memory lookups of a stream: the active segment's, and the sealed segments' id keys."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from eventlog.schema import Record


class ActiveIndex:
    """The active segment's lookups, kept as it grows."""

    def __init__(self) -> None:
        self.events: dict[str, int] = {}
        self.memories: dict[str, list[int]] = {}
        self.namespaces: set[str] = set()
        self.kinds: set[str] = set()

    def add(self, records: Sequence[Record]) -> None:
        for r in records:
            self.events[r.event_id] = r.position
            if r.memory_id is not None:
                self.memories.setdefault(r.memory_id, []).append(r.position)
            self.namespaces.add(r.namespace)
            self.kinds.add(r.kind)


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
