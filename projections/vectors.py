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

from mnemoflow.projections.ann import (
    Approximate,
    HnswIndex,
    Ids,
    IvfIndex,
    State,
    Vectors,
    codes,
    restored_kind,
)


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


class FaissIndex:
    """Flat inner product (exact) while small; an approximate index (`approximate`: "ivf" or
    "hnsw", see `projections.ann`) once it holds more than `approximate_above` vectors."""

    def __init__(
        self,
        dim: int,
        *,
        approximate_above: int = 200_000,
        approximate: str = "ivf",
        nprobe: int = 16,
        hnsw_m: int = 16,
        ef_search: int = 128,
        storage: str = "fp32",
    ) -> None:
        """`storage` "fp16" keeps vectors as half floats (scalar quantizer): half the memory
        and snapshot bytes, inner products within about 1e-3 of float32."""
        quantized = codes(storage)  # checks it
        if approximate not in (IvfIndex.kind, HnswIndex.kind):
            raise ValueError(f"approximate must be ivf or hnsw, not {approximate!r}")
        self.dim = dim
        self.storage = storage
        self.approximate = approximate
        self._above = approximate_above
        self._nprobe = nprobe
        self._hnsw_m = hnsw_m
        self._ef_search = ef_search
        exact = (
            faiss.IndexFlatIP(dim)
            if quantized is None
            else faiss.IndexScalarQuantizer(dim, quantized, faiss.METRIC_INNER_PRODUCT)
        )
        self._flat: faiss.IndexIDMap2 | None = faiss.IndexIDMap2(exact)
        self._ann: Approximate | None = None

    @property
    def kind(self) -> str:
        return "flat" if self._ann is None else self._ann.kind

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
            if self._flat.ntotal > self._above:
                self._become(*self.export())
        else:
            assert self._ann is not None
            self._ann.add(ids, matrix)

    def remove(self, ids: Ids) -> None:
        ids = np.ascontiguousarray(ids, np.int64)
        if self._flat is not None:
            self._flat.remove_ids(faiss.IDSelectorBatch(ids))
        else:
            assert self._ann is not None
            self._ann.remove(ids)

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        q = _as_matrix(queries, self.dim)
        if self._flat is not None:
            scores, ids = self._flat.search(q, k)
            return ids.astype(np.int64), scores.astype(np.float32)
        assert self._ann is not None
        return self._ann.search(q, k)

    def __len__(self) -> int:
        if self._flat is not None:
            return int(self._flat.ntotal)
        assert self._ann is not None
        return len(self._ann)

    def export(self) -> tuple[Ids, Vectors]:
        if self._flat is not None:
            ids = faiss.vector_to_array(self._flat.id_map).astype(np.int64)
            vectors = (
                self._flat.index.reconstruct_n(0, self._flat.ntotal)
                if len(ids)
                else (np.zeros((0, self.dim), np.float32))
            )
        else:
            assert self._ann is not None
            ids, vectors = self._ann.export()
        order = np.argsort(ids, kind="stable")
        return ids[order], np.asarray(vectors, np.float32)[order]

    def state(self) -> dict[str, npt.NDArray[Any]] | None:
        """The approximate index as arrays for a snapshot (it holds the vectors too), so
        that loading does not build it again; None while the index is flat."""
        return None if self._ann is None else self._ann.state()

    def restore(self, state: State) -> None:
        """Take an index that `state()` gave, instead of what this index holds. One of the
        other kind (the setting changed since) is rebuilt as the configured kind."""
        if restored_kind(state) == IvfIndex.kind:
            self._ann = IvfIndex.restore(self.dim, self.storage, self._nprobe, state)
        else:
            self._ann = HnswIndex.restore(
                self.dim, self.storage, self._hnsw_m, self._ef_search, state
            )
        self._flat = None
        if self._ann.kind != self.approximate:
            self._become(*self._ann.export())

    def _become(self, ids: Ids, vectors: Vectors) -> None:
        """The configured approximate index, built over these vectors."""
        self._flat = None
        if self.approximate == IvfIndex.kind:
            self._ann = IvfIndex.build(self.dim, self.storage, self._nprobe, ids, vectors)
        else:
            self._ann = HnswIndex.build(
                self.dim, self.storage, self._hnsw_m, self._ef_search, ids, vectors
            )


__all__ = ["BruteForceIndex", "FaissIndex", "Ids", "VectorIndex", "Vectors", "checksum"]
