"""BM25 over the DuckDB postings, per namespace, scored exactly as Okapi BM25.

Statistics come from DuckDB (cached per namespace until the projection changes), the query
terms' postings are read in one statement, and scores are computed with NumPy.
The formula is rank_bm25's BM25Okapi: idf = ln(N - df + 0.5) - ln(df + 0.5), where a negative
idf (a term in more than half the documents) is replaced by epsilon times the mean idf of
the namespace's vocabulary; a query term counts once per occurrence in the query.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from projections.text import tokenize


class BM25Settings(BaseModel):
    """The ``[lexical]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    k1: float = Field(1.5, gt=0)
    b: float = Field(0.75, ge=0, le=1)
    epsilon: float = Field(0.25, ge=0)
    max_query_terms: int = Field(64, ge=1)


_STATS = """
SELECT c.docs, c.total_length::DOUBLE / c.docs,
       avg(ln(c.docs - t.df + 0.5) - ln(t.df + 0.5))
FROM corpus c JOIN term_stats t USING (namespace, field)
WHERE c.namespace = $ns AND c.field = $field
GROUP BY c.docs, c.total_length
"""

_POSTINGS = """
SELECT term, doc, tf, dl FROM postings
WHERE namespace = $ns AND field = $field AND term IN (SELECT term FROM _query)
"""


@dataclass(frozen=True, slots=True)
class _Stats:
    docs: int
    avgdl: float
    floor: float  # the idf given to terms in over half the documents


class LexicalIndex:
    """BM25 queries over the postings, with per-namespace statistics cached until the
    projection changes (`version` is anything that changes when it does)."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, settings: BM25Settings, version: Callable[[], object]
    ) -> None:
        self._con = con
        self.settings = settings
        self._version = version
        self._seen: object = None
        self._stats: dict[tuple[str, int], _Stats | None] = {}
        self._lock = threading.Lock()

    def _corpus(
        self, cursor: duckdb.DuckDBPyConnection, namespace: str, field: int
    ) -> _Stats | None:
        with self._lock:
            version = self._version()
            if version != self._seen:
                self._stats.clear()
                self._seen = version
            key = (namespace, field)
            if key not in self._stats:
                rows = cursor.execute(_STATS, {"ns": namespace, "field": field}).fetchall()
                self._stats[key] = (
                    _Stats(
                        int(rows[0][0]),
                        float(rows[0][1]),
                        self.settings.epsilon * float(rows[0][2]),
                    )
                    if rows
                    else None
                )
            return self._stats[key]

    def search(
        self, namespace: str, terms: Sequence[str], k: int, field: int = 0
    ) -> list[tuple[int, float]]:
        """The top k (doc, score) of a namespace's field for already-tokenised query terms."""
        terms = list(terms)[: self.settings.max_query_terms]
        if not terms or k <= 0:
            return []
        cursor = self._con.cursor()  # a cursor per call: searches run on several threads
        try:
            stats = self._corpus(cursor, namespace, field)
            if stats is None:
                return []
            cursor.register("_query", pa.table({"term": pa.array(sorted(set(terms)))}))
            table = cursor.sql(_POSTINGS, params={"ns": namespace, "field": field}).to_arrow_table()
        finally:
            cursor.close()
        return _score(table, terms, stats, self.settings, k)


def _score(
    table: pa.Table, terms: Sequence[str], stats: _Stats, s: BM25Settings, k: int
) -> list[tuple[int, float]]:
    if table.num_rows == 0:
        return []
    term = np.asarray(table.column("term").to_pylist(), dtype=object)
    doc = table.column("doc").to_numpy()
    tf = table.column("tf").to_numpy().astype(np.float64)
    dl = table.column("dl").to_numpy().astype(np.float64)
    names, inverse, df = np.unique(term, return_inverse=True, return_counts=True)
    idf = np.log(stats.docs - df + 0.5) - np.log(df + 0.5)
    idf = np.where(idf < 0, stats.floor, idf)
    counts = Counter(terms)  # a query term counts once per occurrence
    weight = idf * np.array([counts[n] for n in names], np.float64)
    part = weight[inverse] * tf * (s.k1 + 1) / (tf + s.k1 * (1 - s.b + s.b * dl / stats.avgdl))
    docs, where = np.unique(doc, return_inverse=True)
    scores = np.bincount(where, weights=part)
    order = np.lexsort((docs, -scores))[:k]
    return [(int(docs[i]), float(scores[i])) for i in order]


def bm25(
    con: duckdb.DuckDBPyConnection,
    namespace: str,
    query: str,
    k: int,
    settings: BM25Settings,
    field: int = 0,
) -> list[tuple[int, float]]:
    """One uncached query: the top k (doc, score) of a namespace's field."""
    return LexicalIndex(con, settings, lambda: None).search(namespace, tokenize(query), k, field)
