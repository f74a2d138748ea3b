"""The approximate FAISS indexes a namespace's vectors move to once it holds many of them.

Two kinds, behind one small interface that `FaissIndex` drives:

- `IvfIndex`, the default: an inverted file. k-means places about sqrt(n) centroids among the
  vectors at hand; a vector is filed under its nearest centroid, and a search scans the
  `nprobe` lists whose centroids are nearest the query. Building it costs a k-means over the
  vectors and one centroid look-up per vector: about a fifth of the CPU of HNSW at 10^5.
  Vectors are removed for real (a hash table finds them). The centroids are learnt again
  when the index has grown or shrunk fourfold since they were learnt.
- `HnswIndex`: a graph that a search walks from the top. Cheaper searches (~0.3 against
  ~0.6 ms at 10^5), costlier to build. HNSW cannot remove vectors, so removals are
  tombstones filtered from results, and the graph is built again once a quarter is dead.

Both keep fp16 codes ("fp16") or float32 ("fp32"), and neither stores vectors relative to
anything learnt: what `export` gives back depends only on the vectors added, so an index
built incrementally and one built by a rebuild hold the same content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import faiss
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from mnemoflow.projections.changes import ranges

Ids = npt.NDArray[np.int64]
Vectors = npt.NDArray[np.float32]
State = Mapping[str, npt.NDArray[Any]]

_ZSTD = pa.Codec("zstd")
_EMPTY_IDS = np.empty(0, np.int64)


class Approximate(Protocol):
    kind: str
    dim: int

    def add(self, ids: Ids, vectors: Vectors) -> None:
        """Vectors under ids the index does not hold."""
        ...

    def remove(self, ids: Ids) -> None: ...

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]: ...

    def __len__(self) -> int: ...

    def export(self) -> tuple[Ids, Vectors]:
        """Every (id, vector), in no particular order."""
        ...

    def state(self) -> dict[str, npt.NDArray[Any]]:
        """What a snapshot keeps: the index, vectors included, as arrays for an .npz."""
        ...


def codes(storage: str) -> Any:
    """The scalar quantizer type of fp16 codes; None for float32."""
    if storage not in ("fp32", "fp16"):
        raise ValueError(f"storage must be fp32 or fp16, not {storage!r}")
    return faiss.ScalarQuantizer.QT_fp16 if storage == "fp16" else None


def _empty(dim: int) -> tuple[Ids, Vectors]:
    return _EMPTY_IDS.copy(), np.zeros((0, dim), np.float32)


# -- IVF ----------------------------------------------------------------------------------


class IvfIndex:
    """An inverted file over `nlist` lists; `nlist` follows the size it is trained at."""

    kind = "ivf"

    def __init__(self, dim: int, storage: str, nprobe: int) -> None:
        self.dim = dim
        self.storage = storage
        self.nprobe = nprobe
        self._index: Any = None  # set by build or restore
        self._quantizer: Any = None
        self._trained_at = 0

    @classmethod
    def build(cls, dim: int, storage: str, nprobe: int, ids: Ids, vectors: Vectors) -> IvfIndex:
        """Centroids learnt from these vectors, and the vectors filed under them."""
        made = cls(dim, storage, nprobe)
        made._train(ids, vectors)
        return made

    @classmethod
    def restore(cls, dim: int, storage: str, nprobe: int, state: State) -> IvfIndex:
        made = cls(dim, storage, nprobe)
        made._index = faiss.deserialize_index(np.ascontiguousarray(state["ivf"], np.uint8))
        made._trained_at = int(state["trained_at"][0])
        return made

    @staticmethod
    def lists_for(n: int) -> int:
        """sqrt(n) lists, and at least 39 training vectors per centroid (fewer makes FAISS
        warn and k-means place centroids badly)."""
        return max(1, min(math.isqrt(n), n // 39))

    def _train(self, ids: Ids, vectors: Vectors) -> None:
        nlist = self.lists_for(len(ids))
        quantizer = faiss.IndexFlatIP(self.dim)
        quantized = codes(self.storage)
        index: Any
        if quantized is None:
            index = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
        else:  # by_residual False: the codes are the vectors' own, not offsets from centroids
            index = faiss.IndexIVFScalarQuantizer(
                quantizer, self.dim, nlist, quantized, faiss.METRIC_INNER_PRODUCT, False
            )
        # k-means on 64 vectors a centroid at most (a seeded sample): a third of the CPU of
        # FAISS's 256, and over the model's vectors of 10^5 memories the same recall@10.
        index.cp.max_points_per_centroid = 64
        index.cp.min_points_per_centroid = 1  # `lists_for` sees to it (one list below 78)
        # A hash table from id to list and offset: removal and export by id.
        index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]
        if len(ids):
            index.train(vectors)
            index.add_with_ids(vectors, ids)
        # The quantizer is kept beside the index, which does not own it (a restored one does).
        self._index, self._quantizer, self._trained_at = index, quantizer, max(len(ids), 1)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if not self._index.is_trained:  # emptied by removals: learnt from what comes next
            self._train(ids, vectors)
            return
        self._index.add_with_ids(vectors, ids)
        self._retrain_if_drifted()

    def remove(self, ids: Ids) -> None:
        self._index.remove_ids(faiss.IDSelectorArray(ids))
        self._retrain_if_drifted()

    def _retrain_if_drifted(self) -> None:
        n = len(self)
        if n > 4 * self._trained_at or 4 * n < self._trained_at:
            self._train(*self.export())

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        if not self._index.is_trained:  # emptied: nothing to find
            return np.full((len(queries), k), -1, np.int64), np.full(
                (len(queries), k), -np.inf, np.float32
            )
        self._index.nprobe = min(self.nprobe, self._index.nlist)
        scores, ids = self._index.search(queries, k)
        return ids.astype(np.int64), scores.astype(np.float32)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def export(self) -> tuple[Ids, Vectors]:
        lists = self._index.invlists
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(self._index.nlist)
            if lists.list_size(i)
        ]
        if not parts:
            return _empty(self.dim)
        ids = np.concatenate(parts).astype(np.int64)
        return ids, self._index.reconstruct_batch(ids).astype(np.float32)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        return {
            "ivf": faiss.serialize_index(self._index),
            "trained_at": np.array([self._trained_at], np.int64),
        }


# -- HNSW ---------------------------------------------------------------------------------


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


class HnswIndex:
    """An HNSW graph over slots; a slot's id is -1 once removed (a tombstone)."""

    kind = "hnsw"

    def __init__(self, dim: int, storage: str, m: int, ef_search: int) -> None:
        self.dim = dim
        self.storage = storage
        self.m = m
        self.ef_search = ef_search
        quantized = codes(storage)
        if quantized is None:
            self._graph: Any = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        else:
            self._graph = faiss.IndexHNSWSQ(dim, quantized, m, faiss.METRIC_INNER_PRODUCT)
        self._slot_ids = _EMPTY_IDS.copy()  # slot -> id (-1: tombstone)
        self._slots = _Slots(self._slot_ids)
        self._live = 0  # slots not tombstoned

    @classmethod
    def build(
        cls, dim: int, storage: str, m: int, ef_search: int, ids: Ids, vectors: Vectors
    ) -> HnswIndex:
        made = cls(dim, storage, m, ef_search)
        made.add(ids, vectors)
        return made

    @classmethod
    def restore(cls, dim: int, storage: str, m: int, ef_search: int, state: State) -> HnswIndex:
        """A graph that `state()` gave, or one that snapshots stored before it was compressed
        (a fifth smaller: the neighbour lists are small integers in 32 bits)."""
        if "graph" in state:
            raw = np.asarray(state["graph"], np.uint8)
        else:
            size = int(state["graph_bytes"][0])
            data = _ZSTD.decompress(state["graph_zstd"], decompressed_size=size, asbytes=True)
            raw = np.frombuffer(data, np.uint8)
        made = cls(dim, storage, m, ef_search)
        made._graph = faiss.deserialize_index(np.ascontiguousarray(raw))
        made._slot_ids = np.asarray(state["slot_ids"], np.int64).copy()
        made._slots = _Slots(made._slot_ids)
        made._live = int((made._slot_ids >= 0).sum())
        return made

    def add(self, ids: Ids, vectors: Vectors) -> None:
        start = len(self._slot_ids)
        self._graph.add(vectors)
        self._slot_ids = np.concatenate([self._slot_ids, ids])
        self._slots.add(ids, start)
        self._live += len(ids)

    def remove(self, ids: Ids) -> None:
        gone = self._slots.live(ids, self._slot_ids)
        self._slot_ids[gone] = -1
        self._live -= len(gone)
        if len(self._slot_ids) and self._live < 0.75 * len(self._slot_ids):
            fresh = self.build(self.dim, self.storage, self.m, self.ef_search, *self.export())
            self._graph, self._slot_ids = fresh._graph, fresh._slot_ids
            self._slots, self._live = fresh._slots, fresh._live

    def search(self, queries: Vectors, k: int) -> tuple[Ids, Vectors]:
        dead = len(self._slot_ids) - self._live
        fetch = min(len(self._slot_ids), k + dead) if dead else k
        self._graph.hnsw.efSearch = max(self.ef_search, fetch)
        scores, slots = self._graph.search(queries, max(fetch, 1))
        out_ids = np.full((len(queries), k), -1, np.int64)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        for row in range(len(queries)):
            found = [
                (self._slot_ids[s], sc)
                for s, sc in zip(slots[row], scores[row], strict=True)
                if s >= 0 and self._slot_ids[s] >= 0
            ][:k]
            for j, (i, sc) in enumerate(found):
                out_ids[row, j], out_scores[row, j] = i, sc
        return out_ids, out_scores

    def __len__(self) -> int:
        return self._live

    def export(self) -> tuple[Ids, Vectors]:
        live = np.flatnonzero(self._slot_ids >= 0)
        if not len(live):
            return _empty(self.dim)
        vectors = np.stack([self._graph.reconstruct(int(s)) for s in live])
        return self._slot_ids[live], vectors.astype(np.float32)

    def state(self) -> dict[str, npt.NDArray[Any]]:
        graph = faiss.serialize_index(self._graph)
        return {
            "graph_zstd": np.frombuffer(_ZSTD.compress(graph, asbytes=True), np.uint8),
            "graph_bytes": np.array([graph.size]),
            "slot_ids": self._slot_ids.copy(),
        }


def restored_kind(state: State) -> str:
    """Which kind of index a snapshot's arrays hold."""
    if "ivf" in state:
        return IvfIndex.kind
    if "graph" in state or "graph_zstd" in state:
        return HnswIndex.kind
    raise ValueError(f"no approximate index among {sorted(state)}")
