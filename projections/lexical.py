"""BM25 over the DuckDB postings, per namespace, scored exactly as Okapi BM25.

The postings of each (namespace, field) are read from DuckDB into memory once per change of
the projection, grouped by term; a query takes a slice per term and scores it with NumPy.
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
SELECT term, doc, tf, dl FROM postings WHERE namespace = $ns AND field = $field ORDER BY term
"""


@dataclass(frozen=True, slots=True)
class _Stats:
    docs: int
    avgdl: float
    floor: float  # the idf given to terms in over half the documents


class _Postings:
    """One (namespace, field)'s postings in memory, grouped by term (compressed rows), so a
    query reads a slice per term instead of scanning the table."""

    def __init__(self, table: dict[str, np.ndarray], stats: _Stats) -> None:
        self.stats = stats
        terms = np.asarray(table["term"], dtype=object)
        self.doc = table["doc"].astype(np.int64)
        self.tf = table["tf"].astype(np.float64)
        self.dl = table["dl"].astype(np.float64)
        self.terms, starts = np.unique(terms, return_index=True)
        self.offsets = np.append(starts, len(terms)).astype(np.int64)

    def slices(self, terms: Sequence[str]) -> list[tuple[str, slice]]:
        out = []
        for term in sorted(set(terms)):
            i = int(np.searchsorted(self.terms, term))
            if i < len(self.terms) and self.terms[i] == term:
                out.append((term, slice(int(self.offsets[i]), int(self.offsets[i + 1]))))
        return out


class LexicalIndex:
    """BM25 queries over the postings of a namespace's field, held in memory per
    (namespace, field) and re-read only when the projection changes (`version` is anything
    that changes when it does)."""

    def __init__(
        self,
        connection: Callable[[], duckdb.DuckDBPyConnection],
        settings: BM25Settings,
        version: Callable[[], object],
    ) -> None:
        """`connection` gives the projection's current connection: an erasure's compaction
        replaces it, so it is asked for at each read, never kept."""
        self._connection = connection
        self.settings = settings
        self._version = version
        self._seen: object = None
        self._postings: dict[tuple[str, int], _Postings | None] = {}
        self._lock = threading.Lock()

    def _load(self, namespace: str, field: int) -> _Postings | None:
        with self._lock:
            version = self._version()
            if version != self._seen:
                self._postings.clear()
                self._seen = version
            key = (namespace, field)
            if key not in self._postings:
                self._postings[key] = self._read(namespace, field)
            return self._postings[key]

    def _read(self, namespace: str, field: int) -> _Postings | None:
        cursor = self._connection().cursor()
        try:
            params = {"ns": namespace, "field": field}
            rows = cursor.execute(_STATS, params).fetchall()
            if not rows:
                return None
            stats = _Stats(
                int(rows[0][0]), float(rows[0][1]), self.settings.epsilon * float(rows[0][2])
            )
            return _Postings(cursor.execute(_POSTINGS, params).fetchnumpy(), stats)
        finally:
            cursor.close()

    def search(
        self, namespace: str, terms: Sequence[str], k: int, field: int = 0
    ) -> list[tuple[int, float]]:
        """The top k (doc, score) of a namespace's field for already-tokenised query terms."""
        terms = list(terms)[: self.settings.max_query_terms]
        if not terms or k <= 0:
            return []
        postings = self._load(namespace, field)
        if postings is None:
            return []
        return _score(postings, terms, self.settings, k)


def _score(
    postings: _Postings, terms: Sequence[str], s: BM25Settings, k: int
) -> list[tuple[int, float]]:
    found = postings.slices(terms)
    if not found:
        return []
    stats = postings.stats
    counts = Counter(terms)  # a query term counts once per occurrence
    docs_parts, score_parts = [], []
    for term, rows in found:
        tf, dl = postings.tf[rows], postings.dl[rows]
        df = rows.stop - rows.start
        idf = float(np.log(stats.docs - df + 0.5) - np.log(df + 0.5))
        if idf < 0:
            idf = stats.floor
        weight = idf * counts[term]
        docs_parts.append(postings.doc[rows])
        score_parts.append(
            weight * tf * (s.k1 + 1) / (tf + s.k1 * (1 - s.b + s.b * dl / stats.avgdl))
        )
    docs, where = np.unique(np.concatenate(docs_parts), return_inverse=True)
    scores = np.bincount(where, weights=np.concatenate(score_parts))
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
    index = LexicalIndex(lambda: con, settings, lambda: None)
    return index.search(namespace, tokenize(query), k, field)
