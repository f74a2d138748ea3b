"""Guardrails in the DuckDB projection: each namespace's rules (removed ones marked) and the
learned warnings it silenced, folded from the input stream's guard events. An erased
namespace's rows are dropped with its memories' words (`DuckProjection._erase`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from mnemoflow.eventlog.guards import GuardAdded, GuardRemoved
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import GUARD_ADDED, GUARD_REMOVED

GUARD_TABLES = ("guard_rules", "guard_silenced")


@dataclass(frozen=True, slots=True)
class RuleRow:
    rule_id: str
    text: str
    action: str
    pattern: str | None


def fold_guards(con: duckdb.DuckDBPyConnection, events: Sequence[Opened]) -> None:
    added: list[tuple[Any, ...]] = []
    removed: list[tuple[Any, ...]] = []
    silenced: list[tuple[Any, ...]] = []
    for event in events:
        r, p = event.record, event.payload
        if r.kind == GUARD_ADDED and isinstance(p, GuardAdded):
            added.append((r.memory_id, r.namespace, p.text, p.action, p.pattern, r.position))
        elif r.kind == GUARD_REMOVED and isinstance(p, GuardRemoved):
            if p.learned is not None:
                silenced.append((r.namespace, p.learned, r.position))
            else:
                removed.append((r.memory_id,))
    if added:
        con.executemany(
            "INSERT INTO guard_rules (rule_id, namespace, text, action, pattern, position) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            added,
        )
    if removed:
        con.executemany("UPDATE guard_rules SET removed = TRUE WHERE rule_id = ?", removed)
    if silenced:
        con.executemany("INSERT INTO guard_silenced VALUES (?, ?, ?)", silenced)


def rules(con: duckdb.DuckDBPyConnection, namespace: str) -> list[RuleRow]:
    """The namespace's rules in force, oldest first."""
    found = (
        con.cursor()
        .execute(
            "SELECT rule_id, text, action, pattern FROM guard_rules "
            "WHERE namespace = ? AND NOT removed ORDER BY position",
            [namespace],
        )
        .fetchall()
    )
    return [RuleRow(*row) for row in found]


def silenced(con: duckdb.DuckDBPyConnection, namespace: str) -> set[str]:
    found = (
        con.cursor()
        .execute("SELECT learned_id FROM guard_silenced WHERE namespace = ?", [namespace])
        .fetchall()
    )
    return {str(row[0]) for row in found}


def failure_precursors(
    con: duckdb.DuckDBPyConnection, namespace: str, least: int, rate: float
) -> list[tuple[str, str, int, int]]:
    """(tool, action, failed episodes, episodes) of the steps that came before a failure in at
    least `least` completed episodes, in at least `rate` of the episodes that took them."""
    found = (
        con.cursor()
        .execute(
            "SELECT s.tool, s.action, "
            "count(DISTINCT s.episode_id) FILTER (WHERE NOT e.success) AS failed, "
            "count(DISTINCT s.episode_id) AS total "
            "FROM episode_steps s JOIN episodes e USING (episode_id) "
            "WHERE s.namespace = ? AND e.completed_at IS NOT NULL "
            "GROUP BY s.tool, s.action HAVING failed >= ? AND failed >= ? * total "
            "ORDER BY failed DESC, s.tool, s.action",
            [namespace, least, rate],
        )
        .fetchall()
    )
    return [(str(t), str(a), int(f), int(n)) for t, a, f, n in found]
