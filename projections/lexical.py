"""BM25 over the DuckDB postings, per namespace, scored exactly as Okapi BM25.

The formula is rank_bm25's BM25Okapi: idf = ln(N - df + 0.5) - ln(df + 0.5), where a negative
idf (a term in more than half the documents) is replaced by epsilon times the mean idf of
the namespace's vocabulary; a query term counts once per occurrence in the query.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
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


_QUERY = """
WITH q AS (SELECT term, count(*)::DOUBLE AS qtf FROM _query GROUP BY term),
c AS (SELECT docs::DOUBLE AS n, total_length::DOUBLE / docs AS avgdl
      FROM corpus WHERE namespace = $ns AND field = $field),
raw AS (SELECT t.term, ln(c.n - t.df + 0.5) - ln(t.df + 0.5) AS idf
        FROM term_stats t, c WHERE t.namespace = $ns AND t.field = $field),
floor AS (SELECT $eps * avg(idf) AS v FROM raw),
w AS (SELECT q.term, q.qtf, CASE WHEN raw.idf < 0 THEN floor.v ELSE raw.idf END AS idf
      FROM q JOIN raw USING (term), floor)
SELECT p.doc,
       sum(w.qtf * w.idf * p.tf * ($k1 + 1)
           / (p.tf + $k1 * (1 - $b + $b * p.dl / c.avgdl))) AS score
FROM postings p JOIN w USING (term), c
WHERE p.namespace = $ns AND p.field = $field
GROUP BY p.doc
ORDER BY score DESC, p.doc
LIMIT $k
"""


def bm25_terms(
    con: duckdb.DuckDBPyConnection,
    namespace: str,
    terms: Sequence[str],
    k: int,
    settings: BM25Settings,
    field: int = 0,
) -> list[tuple[int, float]]:
    """The top k (doc, score) of a namespace's field for already-tokenised query terms."""
    terms = list(terms)[: settings.max_query_terms]
    if not terms or k <= 0:
        return []
    cursor = con.cursor()  # a cursor per call: searches may run on several threads
    cursor.register("_query", pa.table({"term": pa.array(terms, pa.string())}))
    rows = cursor.execute(
        _QUERY,
        {
            "ns": namespace,
            "field": field,
            "eps": settings.epsilon,
            "k1": settings.k1,
            "b": settings.b,
            "k": k,
        },
    ).fetchall()
    cursor.close()
    return [(int(doc), float(score)) for doc, score in rows]


def bm25(
    con: duckdb.DuckDBPyConnection,
    namespace: str,
    query: str,
    k: int,
    settings: BM25Settings,
    field: int = 0,
) -> list[tuple[int, float]]:
    return bm25_terms(con, namespace, tokenize(query), k, settings, field)
