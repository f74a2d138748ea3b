"""BM25 postings in DuckDB: each memory's terms per field, with the document frequencies and
corpus sizes the scores need, kept incrementally as rows come and go."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from projections.memstate import CONTEXT_FIELD, MemoryRow


def register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Make an Arrow table queryable under `name` (replacing what had that name)."""
    with contextlib.suppress(duckdb.Error):
        con.unregister(name)
    con.register(name, table)


def unindex(
    con: duckdb.DuckDBPyConnection, rows: Sequence[MemoryRow], fields: Sequence[int]
) -> None:
    """Remove the rows' postings of these fields, and their terms from the statistics."""
    if not rows:
        return
    register(con, "_gone", pa.table({"doc": pa.array([r.doc for r in rows], pa.int64())}))
    register(con, "_fields", pa.table({"field": pa.array(list(fields), pa.int16())}))
    con.execute(
        "DELETE FROM postings WHERE doc IN (SELECT doc FROM _gone) "
        "AND field IN (SELECT field FROM _fields)"
    )
    for field in fields:
        _adjust(con, rows, field, -1)


def index(con: duckdb.DuckDBPyConnection, rows: Sequence[MemoryRow], fields: Sequence[int]) -> None:
    """Add the rows' postings of these fields, and their terms to the statistics."""
    namespaces: list[str] = []
    field_ids: list[int] = []
    terms_out: list[str] = []
    docs: list[int] = []
    tfs: list[int] = []
    lengths: list[int] = []
    for field in fields:
        for row in rows:
            terms = row.terms(field)
            if not terms and field == CONTEXT_FIELD:
                continue  # no context: the memory is not a document of that field
            counts = Counter(terms)
            n = len(counts)
            namespaces += [row.namespace] * n
            field_ids += [field] * n
            terms_out += counts.keys()
            docs += [row.doc] * n
            tfs += counts.values()
            lengths += [len(terms)] * n
    postings = pa.table(
        {
            "namespace": pa.array(namespaces, pa.string()),
            "field": pa.array(field_ids, pa.int16()),
            "term": pa.array(terms_out, pa.string()),
            "doc": pa.array(docs, pa.int64()),
            "tf": pa.array(tfs, pa.int32()),
            "dl": pa.array(lengths, pa.int32()),
        }
    )
    register(con, "_postings", postings)
    con.execute("INSERT INTO postings SELECT * FROM _postings")
    for field in fields:
        _adjust(con, rows, field, +1)


def _adjust(
    con: duckdb.DuckDBPyConnection, rows: Sequence[MemoryRow], field: int, sign: int
) -> None:
    """Move document frequencies and corpus sizes by the rows' terms, up or down."""
    df: Counter[tuple[str, str]] = Counter()
    docs: Counter[str] = Counter()
    lengths: Counter[str] = Counter()
    for row in rows:
        terms = row.terms(field)
        if not terms and field == CONTEXT_FIELD:
            continue
        for term in set(terms):
            df[(row.namespace, term)] += sign
        docs[row.namespace] += sign
        lengths[row.namespace] += sign * len(terms)
    register(
        con,
        "_df",
        pa.table(
            {
                "namespace": pa.array([k[0] for k in df], pa.string()),
                "field": pa.array([field] * len(df), pa.int16()),
                "term": pa.array([k[1] for k in df], pa.string()),
                "df": pa.array(list(df.values()), pa.int64()),
            }
        ),
    )
    con.execute(
        "INSERT INTO term_stats SELECT * FROM _df ON CONFLICT (namespace, field, term) "
        "DO UPDATE SET df = term_stats.df + excluded.df"
    )
    con.execute("DELETE FROM term_stats WHERE df <= 0")
    register(
        con,
        "_corpus",
        pa.table(
            {
                "namespace": pa.array(list(docs), pa.string()),
                "field": pa.array([field] * len(docs), pa.int16()),
                "docs": pa.array(list(docs.values()), pa.int64()),
                "total_length": pa.array([lengths[n] for n in docs], pa.int64()),
            }
        ),
    )
    con.execute(
        "INSERT INTO corpus SELECT * FROM _corpus ON CONFLICT (namespace, field) DO UPDATE "
        "SET docs = corpus.docs + excluded.docs, "
        "total_length = corpus.total_length + excluded.total_length"
    )
    con.execute("DELETE FROM corpus WHERE docs <= 0")
