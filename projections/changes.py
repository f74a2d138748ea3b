"""Which memories a projection's rows changed for, per namespace, in the order of its batches.

A reader that keeps a copy of a namespace's rows (the BM25 postings, the read model) uses it
to re-read only the memories (docs) changed since its copy, instead of the whole namespace
after every batch. Each committed batch gets the next sequence number. Only the newest
batches are remembered; a reader whose copy is older than that, or than an erasure (which
rewrites rows of every kind), is told to re-read everything (`since` gives None).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import duckdb


class Changes:
    def __init__(self, keep: int = 20_000) -> None:
        """`keep`: how many batches are remembered."""
        self._lock = threading.Lock()
        self._keep = keep
        self._log: deque[tuple[int, str, frozenset[int]]] = deque()
        self._seq = 0
        self._floor = 0  # the newest sequence number no longer remembered

    @property
    def seq(self) -> int:
        """The sequence number of the last committed batch."""
        with self._lock:
            return self._seq

    def record(self, touched: Mapping[str, Iterable[int]]) -> None:
        """A committed batch: the docs whose rows it changed (or may have), by namespace."""
        with self._lock:
            self._seq += 1
            for namespace, docs in touched.items():
                self._log.append((self._seq, namespace, frozenset(docs)))
            while len(self._log) > self._keep:
                self._floor = self._log.popleft()[0]

    def reset(self) -> None:
        """Rows changed in ways not recorded (an erasure): every reader re-reads everything."""
        with self._lock:
            self._seq += 1
            self._floor = self._seq
            self._log.clear()

    def since(self, seq: int, namespace: str) -> frozenset[int] | None:
        """The docs of `namespace` changed after batch `seq`; None if that is not known."""
        with self._lock:
            if seq < self._floor:
                return None
            docs: set[int] = set()
            for at, where, changed in reversed(self._log):
                if at <= seq:
                    break
                if where == namespace:
                    docs |= changed
            return frozenset(docs)

    def to_lay_over(self, seq: int, namespace: str, size: int) -> frozenset[int] | None:
        """The docs of `namespace` changed after batch `seq`, if few enough to lay over a
        copy of `size` docs read then; None if the copy is better read whole again."""
        changed = self.since(seq, namespace)
        return changed if changed is not None and len(changed) <= overlay_limit(size) else None


_OVERLAY_DOCS = 2_000  # at most this many changed docs are laid over a whole read...
_OVERLAY_SHARE = 10  # ...or a tenth of it: past that, reading it whole again is cheaper


def overlay_limit(size: int) -> int:
    """How many changed docs a reader lays over its whole read of `size` docs."""
    return min(_OVERLAY_DOCS, max(64, size // _OVERLAY_SHARE))


def in_sorted(values: npt.NDArray[np.int64], keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Which of `values` are in `keys` (sorted): which rows a reader's copy holds for the
    docs changed since."""
    if not len(keys):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return np.asarray(keys[at] == values)


def ranges(starts: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Every index of the ranges starts[i] .. starts[i] + counts[i] - 1, range after range."""
    first = np.repeat(starts - np.cumsum(counts) + counts, counts)
    out: npt.NDArray[np.int64] = first + np.arange(int(counts.sum()))
    return out


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """A reader's kept copies: at most `size`, the least recently used dropped first (what
    a namespace's copy costs grows with the namespace; a service may see many)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: K) -> V | None:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
        return item

    def items(self) -> list[tuple[K, V]]:
        return list(self._items.items())

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class KeptCopies(Generic[V]):
    """A reader that keeps copies of namespaces' rows (at most `keep`, the least recently
    used dropped first) and brings them up to date from the projection's `Changes`.
    `connection` and `changes` give the projection's current ones: a rebuild or an erasure's
    compaction replaces them, so they are asked for at each read, never kept."""

    def __init__(
        self,
        connection: Callable[[], duckdb.DuckDBPyConnection],
        changes: Callable[[], Changes],
        keep: int = 64,
    ) -> None:
        self._connection = connection
        self._changes = changes
        self._lock = threading.Lock()
        self._kept: Recent[str, V] = Recent(keep)
