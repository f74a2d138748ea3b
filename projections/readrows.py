"""What recall's read model reads from DuckDB: a namespace's rows, whole, or only those of the
memories (docs) in a `_changed` table registered on the connection (to be laid over a whole
read after a change: `projections.changes`). Each is keyed by the memory whose row it is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from mnemoflow.projections.duck import SELECT_HITS

if TYPE_CHECKING:
    import duckdb

EDGE_WEIGHTS = {"entity": 0.5, "similar": 1.0, "updates": 1.0, "extends": 1.0, "contradicts": 1.0}

_CHANGED = "AND {column} IN (SELECT doc FROM _changed)"

_EDGES = (
    "SELECT e.src, e.dst, e.weight * coalesce(k.w, 0.5) AS w "
    "FROM edges e LEFT JOIN _kinds k USING (kind) WHERE e.namespace = ? {only}"
)
_FACETS = "SELECT doc, category FROM facets WHERE namespace = ? {only}"
_SCHEDULES = (
    "SELECT doc, stability, epoch_us(reviewed_at) AS at FROM schedule WHERE namespace = ? {only}"
)
_HITS = SELECT_HITS + " WHERE namespace = ? {only} ORDER BY doc"
_ENTITIES = "SELECT DISTINCT key, doc FROM entities WHERE namespace = ? {only} ORDER BY key, doc"
_DECISIONS = (
    "SELECT doc, decision, target, position FROM consolidation WHERE namespace = ? {only} "
    "ORDER BY position"
)

Columns = dict[str, Any]  # numpy arrays by column, as DuckDB's fetchnumpy gives them


def register_changed(con: duckdb.DuckDBPyConnection, docs: Any) -> None:
    """The docs (int64) the `changed` reads below are restricted to, on this connection."""
    con.register("_changed", pa.table({"doc": pa.array(docs, pa.int64())}))


def _read(
    con: duckdb.DuckDBPyConnection, sql: str, namespace: str, column: str, changed: bool
) -> Columns:
    only = _CHANGED.format(column=column) if changed else ""
    result: Columns = con.execute(sql.format(only=only), [namespace]).fetchnumpy()
    return result


def edges(con: duckdb.DuckDBPyConnection, namespace: str, changed: bool) -> Columns:
    """The linker's edges, weighted by kind (keyed by their source)."""
    con.register("_kinds", pa.table({"kind": list(EDGE_WEIGHTS), "w": list(EDGE_WEIGHTS.values())}))
    return _read(con, _EDGES, namespace, "e.src", changed)


def facets(con: duckdb.DuckDBPyConnection, namespace: str, changed: bool) -> Columns:
    return _read(con, _FACETS, namespace, "doc", changed)


def schedules(con: duckdb.DuckDBPyConnection, namespace: str, changed: bool) -> Columns:
    return _read(con, _SCHEDULES, namespace, "doc", changed)


def hits(con: duckdb.DuckDBPyConnection, namespace: str, changed: bool) -> pa.Table:
    """Every memory as recall's hits show it (all but its context), sorted by doc."""
    only = _CHANGED.format(column="doc") if changed else ""
    relation = con.sql(_HITS.format(only=only), params=[namespace])
    assert relation is not None  # a query gives a relation
    table: pa.Table = relation.to_arrow_table()
    return table.combine_chunks()


def entities(con: duckdb.DuckDBPyConnection, namespace: str, changed: bool) -> Columns:
    """(entity key, doc) pairs, sorted."""
    return _read(con, _ENTITIES, namespace, "doc", changed)


def decisions(
    con: duckdb.DuckDBPyConnection, namespace: str, changed: bool
) -> list[tuple[Any, ...]]:
    """The consolidator's decisions (doc, decision, target, position), oldest first. They
    accumulate: a memory's decisions are never rewritten, only added to."""
    only = _CHANGED.format(column="doc") if changed else ""
    return con.execute(_DECISIONS.format(only=only), [namespace]).fetchall()
