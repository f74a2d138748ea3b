"""The temporal channel: memories whose time (occurred-at, or a time they mention) falls in
an interval the query names ("last week", "in May 2023"). It takes its own cursor: channels
run concurrently on one connection.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from mnemoflow.actors.timeexpr import TimeRef


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
