"""BM25 over the DuckDB postings, per namespace, scored exactly as Okapi BM25.

The postings of each (namespace, field) are read from DuckDB into memory, grouped by term; a
query takes a slice per term and scores it with NumPy. After the projection changes, only the
postings of the documents it changed are read again and laid over the rest (a store then
costs the next query milliseconds, not a reload of the namespace), until those are many.
The formula is rank_bm25's BM25Okapi: idf = ln(N - df + 0.5) - ln(df + 0.5), where a negative
idf (a term in more than half the documents) is replaced by epsilon times the mean idf of
the namespace's vocabulary; a query term counts once per occurrence in the query.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.projections.changes import Changes, Recent, in_sorted
from mnemoflow.projections.heap import release_freed_memory
from mnemoflow.projections.text import tokenize

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
SELECT doc, tf, dl FROM postings WHERE namespace = $ns AND field = $field
ORDER BY term, doc
"""

# The changed docs' postings are few: their terms come with them, in one read.
_CHANGED_POSTINGS = """
SELECT term, doc, tf, dl FROM postings WHERE namespace = $ns AND field = $field
AND doc IN (SELECT doc FROM _changed) ORDER BY term, doc
"""


@dataclass(frozen=True, slots=True)
class _Stats:
    docs: int
    avgdl: float
    floor: float  # the idf given to terms in over half the documents


class _Postings:
    """Postings in memory, grouped by term, so a query reads a slice per term instead of
    scanning the table: each keeps its document, term frequency and document length (a
    query computes BM25's factor from them with the statistics of the moment). The terms are
    kept once each, not once per posting."""

    def __init__(self, terms: list[tuple[str, int]], rows: dict[str, np.ndarray]) -> None:
        self.terms = np.array([t for t, _ in terms], dtype=object)
        counts = np.array([n for _, n in terms], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.doc = rows["doc"].astype(np.int64)
        self.tf = rows["tf"].astype(np.float32)  # small integers: exact
        self.dl = rows["dl"].astype(np.float32)

    def slice(self, term: str) -> slice | None:
        i = int(np.searchsorted(self.terms, term))
        if i < len(self.terms) and self.terms[i] == term:
            return slice(int(self.offsets[i]), int(self.offsets[i + 1]))
        return None


@dataclass(frozen=True, slots=True)
class _View:
    """A (namespace, field) as a query scores it: the postings read at batch `seq` (`base`),
    less the docs changed since (`changed`, sorted), plus those docs' postings now (`delta`),
    with the statistics of batch `at`. None of them while the field has no documents."""

    changes: Changes
    seq: int
    at: int
    stats: _Stats | None
    base: _Postings | None
    changed: npt.NDArray[np.int64]
    delta: _Postings | None

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(doc, tf, dl) of every current posting of the term."""
        parts = []
        for postings, drop in ((self.base, True), (self.delta, False)):
            rows = None if postings is None else postings.slice(term)
            if postings is None or rows is None:
                continue
            doc, tf, dl = postings.doc[rows], postings.tf[rows], postings.dl[rows]
            if drop and len(self.changed):
                keep = ~in_sorted(doc, self.changed)
                doc, tf, dl = doc[keep], tf[keep], dl[keep]
            parts.append((doc, tf, dl))
        if not parts:
            empty = np.zeros(0)
            return empty.astype(np.int64), empty, empty
        if len(parts) == 1:
            return parts[0]
        (doc, tf, dl), (more_doc, more_tf, more_dl) = parts
        return (
            np.concatenate([doc, more_doc]),
            np.concatenate([tf, more_tf]),
            np.concatenate([dl, more_dl]),
        )


class LexicalIndex:
    """BM25 queries over the postings of a namespace's field, held in memory per
    (namespace, field). After the projection changes, only the postings of the docs it
    changed are read again (`changes`), until they are many: then all of them."""

    def __init__(
        self,
        connection: Callable[[], duckdb.DuckDBPyConnection],
        settings: BM25Settings,
        changes: Callable[[], Changes],
        keep: int = 128,
    ) -> None:
        """`connection` gives the projection's current connection: an erasure's compaction
        replaces it, so it is asked for at each read, never kept. `keep` (namespace, field)
        postings are kept at most."""
        self._connection = connection
        self.settings = settings
        self._changes = changes
        self._views: Recent[tuple[str, int], _View] = Recent(keep)
        self._lock = threading.Lock()

    def _load(self, namespace: str, field: int) -> _View:
        with self._lock:
            changes = self._changes()
            now = changes.seq  # before reading: the rows read are at least this new
            key = (namespace, field)
            view = self._views.get(key)
            if view is not None and view.changes is changes:
                if view.at == now:
                    return view
                base_docs = 0 if view.stats is None else view.stats.docs
                changed = changes.to_lay_over(view.seq, namespace, base_docs)
                if changed is not None:
                    view = self._refresh(view, namespace, field, changed, now)
                    self._views.put(key, view)
                    return view
            view = self._read(namespace, field, changes, now)
            self._views.put(key, view)
            release_freed_memory()
            return view

    def _read(self, namespace: str, field: int, changes: Changes, seq: int) -> _View:
        cursor = self._connection().cursor()
        try:
            stats = self._stats(cursor, namespace, field)
            base = None if stats is None else _read_postings(cursor, namespace, field)
            return _View(changes, seq, seq, stats, base, np.zeros(0, np.int64), None)
        finally:
            cursor.close()

    def _refresh(
        self, view: _View, namespace: str, field: int, changed: frozenset[int], at: int
    ) -> _View:
        cursor = self._connection().cursor()
        try:
            docs = np.array(sorted(changed), np.int64)
            cursor.register("_changed", pa.table({"doc": pa.array(docs, pa.int64())}))
            delta = _read_changed_postings(cursor, namespace, field)
            stats = self._stats(cursor, namespace, field)
            return _View(view.changes, view.seq, at, stats, view.base, docs, delta)
        finally:
            cursor.close()

    def _stats(
        self, cursor: duckdb.DuckDBPyConnection, namespace: str, field: int
    ) -> _Stats | None:
        rows = cursor.execute(_STATS, {"ns": namespace, "field": field}).fetchall()
        if not rows:
            return None
        return _Stats(int(rows[0][0]), float(rows[0][1]), self.settings.epsilon * float(rows[0][2]))

    def search(
        self, namespace: str, terms: Sequence[str], k: int, field: int = 0
    ) -> list[tuple[int, float]]:
        """The top k (doc, score) of a namespace's field for already-tokenised query terms."""
        terms = list(terms)[: self.settings.max_query_terms]
        if not terms or k <= 0:
            return []
        view = self._load(namespace, field)
        if view.stats is None:
            return []
        return _score(view, view.stats, terms, k, self.settings)


def _read_postings(cursor: duckdb.DuckDBPyConnection, namespace: str, field: int) -> _Postings:
    """All of a field's postings: the terms once each (with their counts), then the rows."""
    params = {"ns": namespace, "field": field}
    terms = cursor.execute(_TERMS, params).fetchall()
    rows = cursor.execute(_POSTINGS, params).fetchnumpy()
    return _Postings(terms, rows)


def _read_changed_postings(
    cursor: duckdb.DuckDBPyConnection, namespace: str, field: int
) -> _Postings:
    """The postings of the docs in the cursor's `_changed` table, in one read."""
    rows = cursor.execute(_CHANGED_POSTINGS, {"ns": namespace, "field": field}).fetchnumpy()
    terms = [(t, len(list(g))) for t, g in itertools.groupby(rows["term"].tolist())]
    return _Postings(terms, rows)


def _score(
    view: _View, stats: _Stats, terms: Sequence[str], k: int, settings: BM25Settings
) -> list[tuple[int, float]]:
    counts = Counter(terms)  # a query term counts once per occurrence
    k1, b = settings.k1, settings.b
    docs_parts, score_parts = [], []
    for term in sorted(counts):
        doc, tf, dl = view.postings(term)
        df = len(doc)
        if not df:
            continue
        idf = float(np.log(stats.docs - df + 0.5) - np.log(df + 0.5))
        if idf < 0:
            idf = stats.floor
        tf64, dl64 = tf.astype(np.float64), dl.astype(np.float64)
        factor = tf64 * (k1 + 1) / (tf64 + k1 * (1 - b + b * dl64 / stats.avgdl))
        docs_parts.append(doc)
        score_parts.append(idf * counts[term] * factor)
    if not docs_parts:
        return []
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
    changes = Changes()
    index = LexicalIndex(lambda: con, settings, lambda: changes)
    return index.search(namespace, tokenize(query), k, field)
