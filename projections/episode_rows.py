"""Episodes in the DuckDB projection: a row per episode (its task, context and outcome) and a
row per step, folded from the input stream's episode events. An erased namespace's rows are
dropped with its memories' words (`DuckProjection._erase`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from mnemoflow.eventlog.episodes import EpisodeCompleted, EpisodeStarted, EpisodeStep
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import EPISODE_COMPLETED, EPISODE_STARTED, EPISODE_STEP
from mnemoflow.projections.text import tokenize

EPISODE_TABLES = ("episodes", "episode_steps")
_EPISODE_COLUMNS = (
    "episode_id, namespace, task, domain, language, tags, started_at, position, "
    "completed_at, success, score, result, error, duration_ms"
)


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    episode_id: str
    namespace: str
    task: str
    domain: str | None
    language: str | None
    tags: list[str]
    started_at: datetime
    position: int
    completed_at: datetime | None
    success: bool | None
    score: float | None
    result: str | None
    error: str | None
    duration_ms: float | None


@dataclass(frozen=True, slots=True)
class StepRow:
    episode_id: str
    position: int
    tool: str
    action: str
    ok: bool
    error: str | None
    latency_ms: float | None
    tokens: int | None
    observation: str | None
    at: datetime


def fold_episodes(con: duckdb.DuckDBPyConnection, events: Sequence[Opened]) -> None:
    """Apply a run of input events' episode events (the others are not theirs)."""
    started: list[tuple[Any, ...]] = []
    steps: list[tuple[Any, ...]] = []
    completed: list[tuple[Any, ...]] = []
    for event in events:
        r, p = event.record, event.payload
        at = r.occurred_at or r.recorded_at
        if r.kind == EPISODE_STARTED and isinstance(p, EpisodeStarted):
            tags, terms = json.dumps(p.tags), tokenize(p.task)
            started.append(
                (
                    r.memory_id,
                    r.namespace,
                    p.task,
                    p.domain,
                    p.language,
                    tags,
                    at,
                    r.position,
                    terms,
                )
            )
        elif r.kind == EPISODE_STEP and isinstance(p, EpisodeStep):
            steps.append(
                (
                    r.memory_id,
                    r.namespace,
                    r.position,
                    p.tool,
                    p.action,
                    p.ok,
                    p.error,
                    p.latency_ms,
                    p.tokens,
                    p.observation,
                    at,
                )
            )
        elif r.kind == EPISODE_COMPLETED and isinstance(p, EpisodeCompleted):
            completed.append(
                (at, p.success, p.score, p.result, p.error, p.duration_ms, r.position, r.memory_id)
            )
    if started:
        con.executemany(
            "INSERT INTO episodes (episode_id, namespace, task, domain, language, tags, "
            "started_at, position, terms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            started,
        )
    if steps:
        con.executemany("INSERT INTO episode_steps VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", steps)
    if completed:
        con.executemany(
            "UPDATE episodes SET completed_at = ?, success = ?, score = ?, result = ?, "
            "error = ?, duration_ms = ?, completed_position = ? WHERE episode_id = ?",
            completed,
        )


def episode_rows(
    con: duckdb.DuckDBPyConnection,
    namespace: str,
    *,
    domain: str | None = None,
    completed_only: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[EpisodeRow]:
    """A namespace's episodes, oldest first (of one domain; only the completed ones)."""
    found = (
        con.cursor()
        .execute(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE namespace = ? "
            "AND (? IS NULL OR domain = ?) AND (NOT ? OR completed_at IS NOT NULL) "
            "ORDER BY position LIMIT ? OFFSET ?",
            [namespace, domain, domain, completed_only, limit, offset],
        )
        .fetchall()
    )
    return [_episode(row) for row in found]


def _episode(row: tuple[Any, ...]) -> EpisodeRow:
    return EpisodeRow(
        episode_id=row[0],
        namespace=row[1],
        task=row[2],
        domain=row[3],
        language=row[4],
        tags=json.loads(row[5]),
        started_at=row[6],
        position=row[7],
        completed_at=row[8],
        success=row[9],
        score=row[10],
        result=row[11],
        error=row[12],
        duration_ms=row[13],
    )


def episode_candidates(
    con: duckdb.DuckDBPyConnection, namespace: str, domain: str | None, terms: Sequence[str]
) -> tuple[list[tuple[str, list[str], float, int, str]], int, float]:
    """The completed episodes (of one domain) whose task shares a term with `terms`: (id,
    task terms, score, position, tags as JSON) each; and, over all of them, how many there
    are and their tasks' average length in terms (what BM25 needs of the rest)."""
    where = (
        "namespace = ? AND completed_at IS NOT NULL AND (? IS NULL OR domain = ?)",
        [namespace, domain, domain],
    )
    cursor = con.cursor()
    total, average = cursor.execute(
        f"SELECT count(*), coalesce(avg(len(terms)), 0) FROM episodes WHERE {where[0]}", where[1]
    ).fetchall()[0]
    found = cursor.execute(
        "SELECT episode_id, terms, score, position, tags FROM episodes "
        f"WHERE {where[0]} AND list_has_any(terms, ?::VARCHAR[])",
        [*where[1], list(terms)],
    ).fetchall()
    rows = [(str(a), list(b), float(c), int(d), str(e)) for a, b, c, d, e in found]
    return rows, int(total), float(average)


def episodes_by_id(
    con: duckdb.DuckDBPyConnection, episode_ids: Sequence[str]
) -> dict[str, EpisodeRow]:
    found = (
        con.cursor()
        .execute(
            f"SELECT {_EPISODE_COLUMNS} FROM episodes WHERE episode_id IN (SELECT unnest(?))",
            [list(episode_ids)],
        )
        .fetchall()
    )
    return {row[0]: _episode(row) for row in found}


def step_rows(
    con: duckdb.DuckDBPyConnection, episode_ids: Sequence[str]
) -> dict[str, list[StepRow]]:
    """The steps of each episode, in order."""
    out: dict[str, list[StepRow]] = {e: [] for e in episode_ids}
    if not episode_ids:
        return out
    found = (
        con.cursor()
        .execute(
            "SELECT episode_id, position, tool, action, ok, error, latency_ms, tokens, "
            "observation, occurred_at FROM episode_steps WHERE episode_id IN (SELECT unnest(?)) "
            "ORDER BY position",
            [list(episode_ids)],
        )
        .fetchall()
    )
    for row in found:
        out[row[0]].append(StepRow(*row))
    return out
