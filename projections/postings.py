"""BM25 postings in DuckDB: each memory's terms per field, with the document frequencies and
corpus sizes the scores need, kept incrementally as rows come and go."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

import duckdb
import numpy as np
import pyarrow as pa

from mnemoflow.projections.memstate import CONTEXT_FIELD, MemoryRow


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
    _adjust(con, _occurrences(rows, fields), -1)


def index(con: duckdb.DuckDBPyConnection, rows: Sequence[MemoryRow], fields: Sequence[int]) -> None:
    """Add the rows' postings of these fields, and their terms to the statistics."""
    _adjust(con, _occurrences(rows, fields), +1)  # registers them as _occurrences
    con.execute(
        "INSERT INTO postings SELECT namespace, field, term, doc, count(*), any_value(dl) "
        "FROM _occurrences GROUP BY namespace, field, term, doc"
    )


class _Documents(NamedTuple):
    tokens: pa.Table  # one row per term occurrence: namespace, field, term, doc, dl
    corpus: pa.Table  # per (namespace, field): documents and their summed length


def _occurrences(rows: Sequence[MemoryRow], fields: Sequence[int]) -> _Documents:
    """The rows' terms in these fields, as documents of BM25. Counting is left to DuckDB:
    term frequencies and document frequencies are GROUP BYs over the occurrences, not
    Python loops over every term of every row. Python lists one entry per document; each
    document's columns are repeated over its terms by NumPy and Arrow."""
    namespaces: list[str] = []
    field_ids: list[int] = []
    docs: list[int] = []
    lengths: list[int] = []
    terms: list[str] = []
    corpus: Counter[tuple[str, int]] = Counter()
    total: Counter[tuple[str, int]] = Counter()
    for field in fields:
        for row in rows:
            words = row.terms(field)
            n = len(words)
            if not n and field == CONTEXT_FIELD:
                continue  # no context: the memory is not a document of that field
            corpus[row.namespace, field] += 1
            total[row.namespace, field] += n
            namespaces.append(row.namespace)
            field_ids.append(field)
            docs.append(row.doc)
            lengths.append(n)
            terms += words
    counts = np.array(lengths, np.int64)
    each = np.repeat(np.arange(len(counts)), counts)  # per occurrence: its document
    tokens = pa.table(
        {
            "namespace": pa.array(namespaces, pa.string()).take(each),
            "field": pa.array(np.array(field_ids, np.int16)[each], pa.int16()),
            "term": pa.array(terms, pa.string()),
            "doc": pa.array(np.array(docs, np.int64)[each], pa.int64()),
            "dl": pa.array(counts.astype(np.int32)[each], pa.int32()),
        }
    )
    sizes = pa.table(
        {
            "namespace": pa.array([k[0] for k in corpus], pa.string()),
            "field": pa.array([k[1] for k in corpus], pa.int16()),
            "docs": pa.array(list(corpus.values()), pa.int64()),
            "total_length": pa.array([total[k] for k in corpus], pa.int64()),
        }
    )
    return _Documents(tokens, sizes)


def _adjust(con: duckdb.DuckDBPyConnection, documents: _Documents, sign: int) -> None:
    """Move document frequencies and corpus sizes by the documents' terms, up or down."""
    register(con, "_occurrences", documents.tokens)
    con.execute(
        "INSERT INTO term_stats SELECT namespace, field, term, ? * count(DISTINCT doc) "
        "FROM _occurrences GROUP BY namespace, field, term "
        "ON CONFLICT (namespace, field, term) DO UPDATE SET df = term_stats.df + excluded.df",
        [sign],
    )
    con.execute("DELETE FROM term_stats WHERE df <= 0")
    register(con, "_corpus", documents.corpus)
    con.execute(
        "INSERT INTO corpus SELECT namespace, field, ? * docs, ? * total_length FROM _corpus "
        "ON CONFLICT (namespace, field) DO UPDATE "
        "SET docs = corpus.docs + excluded.docs, "
        "total_length = corpus.total_length + excluded.total_length",
        [sign, sign],
    )
    con.execute("DELETE FROM corpus WHERE docs <= 0")
