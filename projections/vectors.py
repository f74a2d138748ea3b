"""Vector indexes keyed by int64 ids: FAISS, and a brute-force NumPy index that checks it.

Both keep one vector per id (adding an id again replaces it), remove by id, and search by
inner product (the vectors are unit length, so this is cosine).
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import faiss
import numpy as np
import numpy.typing as npt

from projections.changes import ranges

Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]


class VectorIndex(Protocol):
    dim: int

    def upsert(self, ids: Ids, vectors: Vectors) -> None: ...

    def remove(self, ids: Ids) -> None: ...

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        """Per query, the k best (ids, scores), best first; missing places hold id -1."""
        ...

    def __len__(self) -> int: ...

    def export(self) -> tuple[Ids, Vectors]:
        """Every (id, vector), ordered by id."""
        ...


def checksum(index: VectorIndex) -> str:
    ids, vectors = index.export()
    return hashlib.sha256(ids.tobytes() + np.ascontiguousarray(vectors).tobytes()).hexdigest()


def _as_matrix(vectors: Vectors, dim: int) -> Vectors:
    matrix = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim)
    return matrix


class BruteForceIndex:
    """Exact search by a matrix product: the reference the FAISS index is tested against."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._rows: dict[int, Vectors] = {}

    def upsert(self, ids: Ids, vectors: Vectors) -> None:
        for i, v in zip(ids.tolist(), _as_matrix(vectors, self.dim), strict=True):
            self._rows[int(i)] = v.copy()

    def remove(self, ids: Ids) -> None:
        for i in ids.tolist():
            self._rows.pop(int(i), None)

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        q = _as_matrix(queries, self.dim)
        out_ids = np.full((len(q), k), -1, np.int64)
        out_scores = np.full((len(q), k), -np.inf, np.float32)
        if self._rows:
            ids, matrix = self.export()
            scores = q @ matrix.T
            for row in range(len(q)):
                order = np.lexsort((ids, -scores[row]))[:k]  # ties: lower id first
                out_ids[row, : len(order)] = ids[order]
                out_scores[row, : len(order)] = scores[row, order]
        return out_ids, out_scores

    def __len__(self) -> int:
        return len(self._rows)

    def export(self) -> tuple[Ids, Vectors]:
        ids = np.array(sorted(self._rows), dtype=np.int64)
        matrix = (
            np.stack([self._rows[int(i)] for i in ids])
            if len(ids)
            else np.zeros((0, self.dim), np.float32)
        )
        return ids, matrix.astype(np.float32)


class _Slots:
    """Which HNSW slots hold which ids: every slot's id, sorted, beside its slot. A removed
    slot's entry stays until the graph is rebuilt; a live one is a slot whose id is still
    the id looked up. Two int64 arrays (a dict of 10^5 ids held ~11 MB)."""

    def __init__(self, slot_ids: Ids) -> None:
        self._slots = np.argsort(slot_ids, kind="stable")
        self._ids = slot_ids[self._slots]

    def add(self, ids: Ids, first_slot: int) -> None:
        order = np.argsort(ids, kind="stable")
        at = np.searchsorted(self._ids, ids[order])
        self._ids = np.insert(self._ids, at, ids[order])
        self._slots = np.insert(self._slots, at, first_slot + order)

    def live(self, ids: Ids, slot_ids: Ids) -> Ids:
        """The slots that hold these ids now."""
        lo = np.searchsorted(self._ids, ids, side="left")
        hi = np.searchsorted(self._ids, ids, side="right")
        counts = hi - lo
        found = self._slots[ranges(lo, counts)]
        live: Ids = found[slot_ids[found] == np.repeat(ids, counts)]
        return live


class FaissIndex:
    """Flat inner product (exact) while small; HNSW once it holds more than `hnsw_above`.

    HNSW cannot remove vectors, so in that mode removals are tombstones filtered from
    results, and the graph is rebuilt from the live vectors once a quarter is dead.
    """

    def __init__(
        self,
        dim: int,
        *,
        hnsw_above: int = 200_000,
        hnsw_m: int = 16,
        ef_search: int = 128,
        storage: str = "fp32",
    ) -> None:
        """`storage` "fp16" keeps vectors as half floats (scalar quantizer): half the memory
        and snapshot bytes, inner products within about 1e-3 of float32."""
        if storage not in ("fp32", "fp16"):
            raise ValueError(f"storage must be fp32 or fp16, not {storage!r}")
        self.dim = dim
        self.storage = storage
        self._hnsw_above = hnsw_above
        self._hnsw_m = hnsw_m
        self._ef_search = ef_search
        self._flat: faiss.IndexIDMap2 | None = faiss.IndexIDMap2(self._flat_codes())
        self._hnsw: Any = None  # faiss.IndexHNSWFlat or IndexHNSWSQ
        self._slot_ids = np.empty(0, np.int64)  # HNSW slot -> id (-1: tombstone)
        self._slots = _Slots(self._slot_ids)
        self._live = 0  # slots not tombstoned

    def _flat_codes(self) -> faiss.Index:
        if self.storage == "fp16":
            return faiss.IndexScalarQuantizer(
                self.dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
        return faiss.IndexFlatIP(self.dim)

    @property
    def kind(self) -> str:
        return "flat" if self._flat is not None else "hnsw"

    def upsert(self, ids: Ids, vectors: Vectors) -> None:
        ids = np.ascontiguousarray(ids, np.int64)
        matrix = _as_matrix(vectors, self.dim)
        if len(ids) == 0:
            return
        # The last vector given for an id wins, as if they were added one by one.
        _, last = np.unique(ids[::-1], return_index=True)
        keep = np.sort(len(ids) - 1 - last)
        ids, matrix = ids[keep], matrix[keep]
        self.remove(ids)
        if self._flat is not None:
            self._flat.add_with_ids(matrix, ids)
            if self._flat.ntotal > self._hnsw_above:
                self._to_hnsw()
        else:
            self._hnsw_add(ids, matrix)

    def remove(self, ids: Ids) -> None:
        ids = np.ascontiguousarray(ids, np.int64)
        if self._flat is not None:
            self._flat.remove_ids(faiss.IDSelectorBatch(ids))
            return
        gone = self._slots.live(ids, self._slot_ids)
        self._slot_ids[gone] = -1
        self._live -= len(gone)
        if len(self._slot_ids) and self._live < 0.75 * len(self._slot_ids):
            self._rebuild_hnsw(*self.export())

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        q = _as_matrix(queries, self.dim)
        if self._flat is not None:
            scores, ids = self._flat.search(q, k)
            return ids.astype(np.int64), scores.astype(np.float32)
        assert self._hnsw is not None
        dead = len(self._slot_ids) - self._live
        fetch = min(len(self._slot_ids), k + dead) if dead else k
        self._hnsw.hnsw.efSearch = max(self._ef_search, fetch)
        scores, slots = self._hnsw.search(q, max(fetch, 1))
        out_ids = np.full((len(q), k), -1, np.int64)
        out_scores = np.full((len(q), k), -np.inf, np.float32)
        for row in range(len(q)):
            found = [
                (self._slot_ids[s], sc)
                for s, sc in zip(slots[row], scores[row], strict=True)
                if s >= 0 and self._slot_ids[s] >= 0
            ][:k]
            for j, (i, sc) in enumerate(found):
                out_ids[row, j], out_scores[row, j] = i, sc
        return out_ids, out_scores

    def __len__(self) -> int:
        return int(self._flat.ntotal) if self._flat is not None else self._live

    def export(self) -> tuple[Ids, Vectors]:
        if self._flat is not None:
            ids = faiss.vector_to_array(self._flat.id_map).astype(np.int64)
            vectors = (
                self._flat.index.reconstruct_n(0, self._flat.ntotal)
                if len(ids)
                else (np.zeros((0, self.dim), np.float32))
            )
        else:
            assert self._hnsw is not None
            live = np.flatnonzero(self._slot_ids >= 0)
            ids = self._slot_ids[live]
            vectors = (
                np.stack([self._hnsw.reconstruct(int(s)) for s in live])
                if len(live)
                else (np.zeros((0, self.dim), np.float32))
            )
        order = np.argsort(ids, kind="stable")
        return ids[order], np.asarray(vectors, np.float32)[order]

    def graph(self) -> tuple[npt.NDArray[np.uint8], Ids] | None:
        """The HNSW graph, serialised, and its slot ids; None while the index is flat.
        A snapshot keeps it so that loading does not rebuild the graph (minutes at 10^5)."""
        if self._hnsw is None:
            return None
        return faiss.serialize_index(self._hnsw), self._slot_ids.copy()

    def restore(self, graph: npt.NDArray[np.uint8], slot_ids: Ids) -> None:
        """Take a graph that `graph()` returned, instead of what this index holds."""
        self._flat = None
        self._hnsw = faiss.deserialize_index(np.ascontiguousarray(graph, np.uint8))
        self._slot_ids = np.asarray(slot_ids, np.int64).copy()
        self._slots = _Slots(self._slot_ids)
        self._live = int((self._slot_ids >= 0).sum())

    def _to_hnsw(self) -> None:
        ids, vectors = self.export()
        self._flat = None
        self._rebuild_hnsw(ids, vectors)

    def _rebuild_hnsw(self, ids: Ids, vectors: Vectors) -> None:
        if self.storage == "fp16":
            self._hnsw = faiss.IndexHNSWSQ(
                self.dim,
                faiss.ScalarQuantizer.QT_fp16,  # type: ignore[arg-type]  # stubs say a class
                self._hnsw_m,
                faiss.METRIC_INNER_PRODUCT,
            )
        else:
            self._hnsw = faiss.IndexHNSWFlat(self.dim, self._hnsw_m, faiss.METRIC_INNER_PRODUCT)
        self._slot_ids = np.empty(0, np.int64)
        self._slots, self._live = _Slots(self._slot_ids), 0
        self._hnsw_add(ids, vectors)

    def _hnsw_add(self, ids: Ids, vectors: Vectors) -> None:
        assert self._hnsw is not None
        start = len(self._slot_ids)
        self._hnsw.add(vectors)
        self._slot_ids = np.concatenate([self._slot_ids, ids])
        self._slots.add(ids, start)
        self._live += len(ids)
