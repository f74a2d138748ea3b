"""Patterns in the DuckDB projection: each pattern as its newest `pattern.learned` event says
(an inactive one kept, marked), folded from the patterns stream. An erased namespace's rows
are dropped with its memories' words (`DuckProjection._erase`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from mnemoflow.eventlog.derived import Branch, PatternLearned
from mnemoflow.eventlog.opened import Opened

PATTERN_TABLES = ("patterns",)
_COLUMNS = (
    "pattern_id, namespace, kind, family, task, domain, steps, point, branches, error, "
    "failed_step, families, terms, support, success_rate, episodes, active, position"
)


@dataclass(frozen=True, slots=True)
class PatternRow:
    pattern_id: str
    namespace: str
    kind: str
    family: str
    task: str
    domain: str | None
    steps: list[str]
    point: str | None
    branches: list[Branch]
    error: str | None
    failed_step: str | None
    families: list[str]
    terms: dict[str, float]
    support: int
    success_rate: float
    episodes: list[str]
    active: bool
    position: int


def fold_patterns(con: duckdb.DuckDBPyConnection, events: Sequence[Opened]) -> None:
    """Apply a run of the patterns stream: each pattern's row replaced by its newest event."""
    newest: dict[str, tuple[Any, ...]] = {}
    for event in events:
        r, p = event.record, event.payload
        if not isinstance(p, PatternLearned):
            continue
        newest[p.pattern_id] = (
            p.pattern_id,
            r.namespace,
            p.kind,
            p.family,
            p.task,
            p.domain,
            p.steps,
            p.point,
            json.dumps([[b.step, b.support, b.success_rate] for b in p.branches]),
            p.error,
            p.failed_step,
            p.families,
            json.dumps(p.terms, sort_keys=True),
            p.support,
            p.success_rate,
            p.episodes,
            p.active,
            r.position,
        )
    if not newest:
        return
    con.execute("DELETE FROM patterns WHERE pattern_id IN (SELECT unnest(?))", [list(newest)])
    con.executemany(
        f"INSERT INTO patterns ({_COLUMNS}) VALUES ({', '.join('?' * 18)})", list(newest.values())
    )


def pattern_rows(
    con: duckdb.DuckDBPyConnection,
    namespace: str,
    *,
    kind: str | None = None,
    families: Sequence[str] | None = None,
    error: str | None = None,
    limit: int = 100,
) -> list[PatternRow]:
    """The namespace's patterns that hold, strongest first (support, then success rate): of
    one kind, of those kinds of task (an error recovery: met in one of them), for an error
    (normalised)."""
    found = (
        con.cursor()
        .execute(
            f"SELECT {_COLUMNS} FROM patterns WHERE namespace = $ns AND active "
            "AND ($kind IS NULL OR kind = $kind) AND ($error IS NULL OR error = $error) "
            "AND ($families IS NULL OR list_contains($families, family) "
            "     OR list_has_any(families, $families)) "
            "ORDER BY support DESC, success_rate DESC, position LIMIT $limit",
            {
                "ns": namespace,
                "kind": kind,
                "error": error,
                "families": None if families is None else list(families),
                "limit": limit,
            },
        )
        .fetchall()
    )
    return [_row(row) for row in found]


def family_terms(con: duckdb.DuckDBPyConnection, namespace: str) -> dict[str, dict[str, float]]:
    """Each kind of task's task terms (share of its tasks having each), from its sequence."""
    found = (
        con.cursor()
        .execute(
            "SELECT family, terms FROM patterns WHERE namespace = ? AND active "
            "AND kind = 'tool_sequence'",
            [namespace],
        )
        .fetchall()
    )
    return {str(family): json.loads(terms) for family, terms in found}


def pattern_by_id(con: duckdb.DuckDBPyConnection, pattern_id: str) -> PatternRow | None:
    found = (
        con.cursor()
        .execute(f"SELECT {_COLUMNS} FROM patterns WHERE pattern_id = ?", [pattern_id])
        .fetchall()
    )
    return _row(found[0]) if found else None


def _row(row: tuple[Any, ...]) -> PatternRow:
    values = list(row)
    values[8] = [Branch(s, n, r) for s, n, r in json.loads(values[8])]
    values[12] = json.loads(values[12])
    return PatternRow(*values)
