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
import pyarrow as pa

from mnemoflow.eventlog.episodes import EpisodeCompleted, EpisodeStarted, EpisodeStep
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import EPISODE_COMPLETED, EPISODE_STARTED, EPISODE_STEP
from mnemoflow.projections.memstate import doc_id
from mnemoflow.projections.postings import register
from mnemoflow.projections.rows import TS
from mnemoflow.projections.text import tokenize

EPISODE_TABLES = ("episodes", "episode_steps")
EPISODE_COLUMNS = (
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


_STARTED = pa.schema(
    [
        ("episode_id", pa.string()),
        ("namespace", pa.string()),
        ("task", pa.string()),
        ("domain", pa.string()),
        ("language", pa.string()),
        ("tags", pa.string()),
        ("started_at", TS),
        ("position", pa.int64()),
        ("terms", pa.list_(pa.string())),
        ("doc", pa.int64()),
    ]
)
_STEPS = pa.schema(
    [
        ("episode_id", pa.string()),
        ("namespace", pa.string()),
        ("position", pa.int64()),
        ("tool", pa.string()),
        ("action", pa.string()),
        ("ok", pa.bool_()),
        ("error", pa.string()),
        ("latency_ms", pa.float64()),
        ("tokens", pa.int64()),
        ("observation", pa.string()),
        ("occurred_at", TS),
    ]
)
_COMPLETED = pa.schema(
    [
        ("completed_at", TS),
        ("success", pa.bool_()),
        ("score", pa.float64()),
        ("result", pa.string()),
        ("error", pa.string()),
        ("duration_ms", pa.float64()),
        ("completed_position", pa.int64()),
        ("episode_id", pa.string()),
    ]
)


def fold_episodes(con: duckdb.DuckDBPyConnection, events: Sequence[Opened]) -> None:
    """Apply a run of input events' episode events (the others are not theirs): each kind
    as one Arrow table, starts inserted before steps, completions applied last."""
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
                    doc_id(r.memory_id or ""),
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
        register(con, "_started", _arrow(_STARTED, started))
        con.execute(
            "INSERT INTO episodes (episode_id, namespace, task, domain, language, tags, "
            "started_at, position, terms, doc) SELECT * FROM _started ON CONFLICT DO NOTHING"
        )
    if steps:
        register(con, "_steps", _arrow(_STEPS, steps))
        con.execute("INSERT INTO episode_steps SELECT * FROM _steps")
    if completed:
        register(con, "_completed", _arrow(_COMPLETED, completed))
        con.execute(
            "UPDATE episodes SET completed_at = c.completed_at, success = c.success, "
            "score = c.score, result = c.result, error = c.error, duration_ms = c.duration_ms, "
            "completed_position = c.completed_position FROM _completed c "
            "WHERE episodes.episode_id = c.episode_id"
        )


def _arrow(schema: pa.Schema, rows: list[tuple[Any, ...]]) -> pa.Table:
    return pa.Table.from_pylist([dict(zip(schema.names, row, strict=True)) for row in rows], schema)


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
            f"SELECT {EPISODE_COLUMNS} FROM episodes WHERE namespace = ? "
            "AND (? IS NULL OR domain = ?) AND (NOT ? OR completed_at IS NOT NULL) "
            "ORDER BY position LIMIT ? OFFSET ?",
            [namespace, domain, domain, completed_only, limit, offset],
        )
        .fetchall()
    )
    return [episode_row(row) for row in found]


def episode_row(row: tuple[Any, ...]) -> EpisodeRow:
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


def fill_docs(con: duckdb.DuckDBPyConnection) -> None:
    """Give the rows of a file made before tasks were embedded their doc."""
    missing = con.execute("SELECT episode_id FROM episodes WHERE doc IS NULL").fetchall()
    if missing:
        ids = [str(e) for (e,) in missing]
        register(con, "_docs", pa.table({"e": ids, "d": [doc_id(e) for e in ids]}))
        con.execute("UPDATE episodes SET doc = _docs.d FROM _docs WHERE episode_id = _docs.e")


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
