"""The query's SQL channels and lookups over what the actors derived (DuckDB).

- entity: memories mentioning an entity the query names (its capitalised spans and its plain
  words, matched against entity keys), scored by the sum of the matched entities' idf;
- temporal: memories whose time (occurred-at, or a time they mention) falls in an interval
  the query names ("last week", "in May 2023");
- graph: the edges around a set of seed memories (entity co-occurrence, similarity, typed
  claims), for spreading activation;
- facets, consolidation and schedules of the candidates, to adjust and explain the ranking.

Each function takes its own cursor: channels run concurrently on one connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from actors.timeexpr import TimeRef

EDGE_WEIGHTS = {"entity": 0.5, "similar": 1.0, "updates": 1.0, "extends": 1.0, "contradicts": 1.0}


def entity_search(
    cursor: duckdb.DuckDBPyConnection, namespace: str, keys: Sequence[str], n: int
) -> list[tuple[int, float]]:
    if not keys:
        return []
    cursor.register("_keys", pa.table({"key": pa.array(sorted(set(keys)), pa.string())}))
    rows = cursor.execute(
        """
        WITH n AS (SELECT count(DISTINCT doc) AS docs FROM entities WHERE namespace = $ns),
        idf AS (
            SELECT key, ln(1 + (SELECT docs FROM n) / count(*)) AS idf
            FROM entities WHERE namespace = $ns AND key IN (SELECT key FROM _keys)
            GROUP BY key
        )
        SELECT e.doc, sum(idf.idf) AS score
        FROM entities e JOIN idf USING (key)
        WHERE e.namespace = $ns
        GROUP BY e.doc ORDER BY score DESC, e.doc LIMIT $n
        """,
        {"ns": namespace, "n": n},
    ).fetchall()
    return [(int(d), float(s)) for d, s in rows]


def temporal_search(
    cursor: duckdb.DuckDBPyConnection, namespace: str, spans: Sequence[TimeRef], n: int
) -> list[tuple[int, float]]:
    """1 for a memory that mentions a time inside a span, 0.8 for one that happened inside."""
    scores: dict[int, float] = {}
    for span in spans:
        rows = cursor.execute(
            """
            SELECT doc, 1.0 FROM times
            WHERE namespace = $ns AND t_start < $end AND t_end > $start
            UNION ALL
            SELECT doc, 0.8 FROM memories
            WHERE namespace = $ns AND status = 'active'
              AND occurred_at >= $start AND occurred_at < $end
            """,
            {"ns": namespace, "start": span.start, "end": span.end},
        ).fetchall()
        for doc, score in rows:
            scores[int(doc)] = max(scores.get(int(doc), 0.0), float(score))
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return ranked[:n]


def edges_around(
    cursor: duckdb.DuckDBPyConnection, namespace: str, seeds: Sequence[int]
) -> list[tuple[int, int, str, float]]:
    """(seed, neighbour, kind, weight) for every edge touching a seed, either direction."""
    if not seeds:
        return []
    cursor.register("_seeds", pa.table({"doc": pa.array(list(seeds), pa.int64())}))
    rows = cursor.execute(
        """
        SELECT src, dst, kind, weight FROM edges
        WHERE namespace = $ns AND src IN (SELECT doc FROM _seeds)
        UNION ALL
        SELECT dst, src, kind, weight FROM edges
        WHERE namespace = $ns AND dst IN (SELECT doc FROM _seeds)
        """,
        {"ns": namespace},
    ).fetchall()
    return [(int(s), int(d), str(k), float(w)) for s, d, k, w in rows]


@dataclass(frozen=True, slots=True)
class Facts:
    """What the ranking needs to know about candidate memories besides their scores."""

    category: dict[int, str]
    superseded_by: dict[int, int]  # older -> the newer memory that supersedes it
    duplicate_of: dict[int, int]  # merged -> the memory it was merged into
    schedule: dict[int, tuple[float, datetime]]  # stability (days), last review


def facts_of(cursor: duckdb.DuckDBPyConnection, docs: Sequence[int]) -> Facts:
    if not docs:
        return Facts({}, {}, {}, {})
    cursor.register("_cands", pa.table({"doc": pa.array(list(docs), pa.int64())}))
    category = dict(
        cursor.execute(
            "SELECT doc, category FROM facets WHERE doc IN (SELECT doc FROM _cands)"
        ).fetchall()
    )
    decisions = cursor.execute(
        "SELECT doc, decision, target FROM consolidation "
        "WHERE doc IN (SELECT doc FROM _cands) OR target IN (SELECT doc FROM _cands) "
        "ORDER BY position"
    ).fetchall()
    superseded = {int(t): int(d) for d, kind, t in decisions if kind == "supersedes"}
    duplicate = {int(d): int(t) for d, kind, t in decisions if kind == "duplicate"}
    schedule = {
        int(d): (float(s), r)
        for d, s, r in cursor.execute(
            "SELECT doc, stability, reviewed_at FROM schedule WHERE doc IN (SELECT doc FROM _cands)"
        ).fetchall()
    }
    return Facts({int(d): str(c) for d, c in category.items()}, superseded, duplicate, schedule)
