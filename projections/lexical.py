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
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from projections.heap import release_freed_memory
from projections.text import tokenize

if TYPE_CHECKING:
    import duckdb


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

_TERMS = """
SELECT term, count(*) FROM postings WHERE namespace = $ns AND field = $field
GROUP BY term ORDER BY term
"""

_POSTINGS = """
SELECT doc, tf, dl FROM postings WHERE namespace = $ns AND field = $field ORDER BY term, doc
"""


@dataclass(frozen=True, slots=True)
class _Stats:
    docs: int
    avgdl: float
    floor: float  # the idf given to terms in over half the documents


class _Postings:
    """One (namespace, field)'s postings in memory, grouped by term, so a query reads a slice
    per term instead of scanning the table. Each posting keeps its document and its BM25
    term-frequency factor, tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)): a query multiplies
    that by the term's idf. The terms are kept once each, not once per posting."""

    def __init__(
        self,
        terms: list[tuple[str, int]],
        rows: dict[str, np.ndarray],
        stats: _Stats,
        settings: BM25Settings,
    ) -> None:
        self.stats = stats
        self.terms = np.array([t for t, _ in terms], dtype=object)
        counts = np.array([n for _, n in terms], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.doc = rows["doc"].astype(np.int64)
        tf, dl = rows["tf"].astype(np.float64), rows["dl"].astype(np.float64)
        k1, b = settings.k1, settings.b
        self.factor = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / stats.avgdl))

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
                release_freed_memory()
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
            terms = cursor.execute(_TERMS, params).fetchall()
            postings = cursor.execute(_POSTINGS, params).fetchnumpy()
            return _Postings(terms, postings, stats, self.settings)
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
        return _score(postings, terms, k)


def _score(postings: _Postings, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
    found = postings.slices(terms)
    if not found:
        return []
    stats = postings.stats
    counts = Counter(terms)  # a query term counts once per occurrence
    docs_parts, score_parts = [], []
    for term, rows in found:
        df = rows.stop - rows.start
        idf = float(np.log(stats.docs - df + 0.5) - np.log(df + 0.5))
        if idf < 0:
            idf = stats.floor
        docs_parts.append(postings.doc[rows])
        score_parts.append(idf * counts[term] * postings.factor[rows])
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
