"""What recall reads for every query but changes only when the projections do.

Per namespace, loaded on first use after a change and kept as NumPy arrays (so a reload after
each batch of a steady ingest stays cheap): the conversation neighbours (each memory and the
one stored before it), the linker's edges, categories, decay schedules and the
consolidator's decisions. Lookups for a query's candidates are vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from projections.heap import release_freed_memory

Docs = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

EDGE_WEIGHTS = {"entity": 0.5, "similar": 1.0, "updates": 1.0, "extends": 1.0, "contradicts": 1.0}


class Adjacency:
    """Edges grouped by source (compressed rows): the neighbours of many memories at once."""

    def __init__(self, src: Docs, dst: Docs, weight: Floats) -> None:
        order = np.argsort(src, kind="stable")
        src, self.dst, self.weight = src[order], dst[order], weight[order]
        self.keys, starts = np.unique(src, return_index=True)
        self.offsets = np.append(starts, len(src)).astype(np.int64)

    def expand(self, docs: Docs) -> tuple[Docs, Docs, Floats]:
        """(index into `docs`, neighbour, weight) for every edge leaving one of `docs`."""
        if not len(self.keys) or not len(docs):
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0)
        at = np.searchsorted(self.keys, docs)
        at = np.minimum(at, len(self.keys) - 1)
        found = np.flatnonzero(self.keys[at] == docs)
        starts, ends = self.offsets[at[found]], self.offsets[at[found] + 1]
        counts = ends - starts
        owner = np.repeat(found, counts)
        first = np.repeat(starts - np.cumsum(counts) + counts, counts)
        index = first + np.arange(int(counts.sum()))
        return owner, self.dst[index], self.weight[index]


def _both_ways(src: Docs, dst: Docs, weight: Floats) -> Adjacency:
    return Adjacency(np.concatenate([src, dst]), np.concatenate([dst, src]), np.tile(weight, 2))


@dataclass(frozen=True, slots=True)
class Lookup:
    """A sorted key array and the values beside it, looked up many keys at a time."""

    keys: Docs
    values: npt.NDArray[np.generic]

    @classmethod
    def of(cls, keys: Docs, values: npt.NDArray[np.generic]) -> Lookup:
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], values[order])

    def get(self, docs: Docs) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.generic]]:
        if not len(self.keys):
            return np.zeros(len(docs), bool), np.zeros(len(docs), self.values.dtype)
        at = np.minimum(np.searchsorted(self.keys, docs), len(self.keys) - 1)
        hit = self.keys[at] == docs
        return hit, self.values[at]


class NamespaceModel:
    def __init__(self, con: duckdb.DuckDBPyConnection, namespace: str) -> None:
        self._con, self._namespace = con, namespace
        self._entities: tuple[np.ndarray, Docs, Docs, int] | None = None  # on first use
        cursor = con.cursor()
        prev = cursor.execute(
            "SELECT doc, prev_doc FROM memories WHERE namespace = ? AND prev_doc IS NOT NULL "
            "AND status = 'active'",
            [namespace],
        ).fetchnumpy()
        self.neighbours = _both_ways(
            prev["doc"].astype(np.int64),
            prev["prev_doc"].astype(np.int64),
            np.ones(len(prev["doc"])),
        )
        cursor.register(
            "_kinds",
            pa.table({"kind": list(EDGE_WEIGHTS), "w": list(EDGE_WEIGHTS.values())}),
        )
        edges = cursor.execute(
            "SELECT e.src, e.dst, e.weight * coalesce(k.w, 0.5) AS w "
            "FROM edges e LEFT JOIN _kinds k USING (kind) WHERE e.namespace = ?",
            [namespace],
        ).fetchnumpy()
        self.edges = _both_ways(
            edges["src"].astype(np.int64), edges["dst"].astype(np.int64), edges["w"].astype(float)
        )
        facets = cursor.execute(
            "SELECT doc, category FROM facets WHERE namespace = ?", [namespace]
        ).fetchnumpy()
        self.category = Lookup.of(facets["doc"].astype(np.int64), np.asarray(facets["category"]))
        schedule = cursor.execute(
            "SELECT doc, stability, epoch_us(reviewed_at) AS at FROM schedule WHERE namespace = ?",
            [namespace],
        ).fetchnumpy()
        self.stability = Lookup.of(
            schedule["doc"].astype(np.int64),
            np.stack([schedule["stability"], schedule["at"].astype(float)], axis=1)
            if len(schedule["doc"])
            else np.zeros((0, 2)),
        )
        self.superseded_by: dict[int, int] = {}
        self.duplicate_of: dict[int, int] = {}
        for doc, decision, target in cursor.execute(
            "SELECT doc, decision, target FROM consolidation WHERE namespace = ? ORDER BY position",
            [namespace],
        ).fetchall():
            if decision == "supersedes":
                self.superseded_by[int(target)] = int(doc)
            else:
                self.duplicate_of[int(doc)] = int(target)
        self.merged_into: dict[int, list[int]] = {}
        for doc, target in sorted(self.duplicate_of.items()):
            self.merged_into.setdefault(target, []).append(doc)

    def mentions(self, keys: list[str], n: int) -> list[tuple[int, float]]:
        """The entity channel: memories mentioning any of the keys, scored by the summed
        idf (ln(1 + memories / memories mentioning it)) of the keys they mention."""
        if self._entities is None:
            self._entities = _load_entities(self._con, self._namespace)
        keys_sorted, offsets, docs, total = self._entities
        parts_docs, parts_scores = [], []
        for key in sorted(set(keys)):
            i = int(np.searchsorted(keys_sorted, key))
            if i < len(keys_sorted) and keys_sorted[i] == key:
                chunk = docs[offsets[i] : offsets[i + 1]]
                parts_docs.append(chunk)
                parts_scores.append(np.full(len(chunk), np.log(1 + total / len(chunk))))
        if not parts_docs:
            return []
        unique, where = np.unique(np.concatenate(parts_docs), return_inverse=True)
        scores = np.bincount(where, weights=np.concatenate(parts_scores))
        order = np.lexsort((unique, -scores))[:n]
        return [(int(unique[i]), float(scores[i])) for i in order]

    def categories(self, docs: Docs) -> dict[int, str]:
        hit, values = self.category.get(docs)
        return {int(d): str(v) for d, v, h in zip(docs, values, hit, strict=True) if h}


def _load_entities(
    con: duckdb.DuckDBPyConnection, namespace: str
) -> tuple[np.ndarray, Docs, Docs, int]:
    """Entity keys (sorted), offsets into the docs mentioning each, and the memory count."""
    rows = (
        con.cursor()
        .execute(
            "SELECT DISTINCT key, doc FROM entities WHERE namespace = ? ORDER BY key, doc",
            [namespace],
        )
        .fetchnumpy()
    )
    keys = np.asarray(rows["key"], dtype=object)
    docs = rows["doc"].astype(np.int64)
    unique, starts = np.unique(keys, return_index=True)
    total = len(np.unique(docs))
    return unique, np.append(starts, len(keys)).astype(np.int64), docs, total


class ReadModel:
    """Every namespace's model, for one version of the projections."""

    def __init__(self, con: duckdb.DuckDBPyConnection, version: object) -> None:
        self.version = version
        self._con = con
        self._namespaces: dict[str, NamespaceModel] = {}
        self._votes: dict[int, int] | None = None

    def namespace(self, namespace: str) -> NamespaceModel:
        model = self._namespaces.get(namespace)
        if model is None:
            model = self._namespaces[namespace] = NamespaceModel(self._con, namespace)
            release_freed_memory()  # what reading it from DuckDB left behind
        return model

    def votes(self) -> dict[int, int]:
        """Useful minus not-useful votes per doc (only docs with votes)."""
        if self._votes is None:
            rows = (
                self._con.cursor()
                .execute(
                    "SELECT m.doc, sum(CASE WHEN f.useful THEN 1 ELSE -1 END) FROM feedback f "
                    "JOIN memories m USING (memory_id) GROUP BY m.doc"
                )
                .fetchall()
            )
            self._votes = {int(d): int(n) for d, n in rows}
        return self._votes
