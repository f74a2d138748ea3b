"""Patterns through the Python API (`mem.patterns`): what the patterns actor learned from
completed episodes (see `mnemoflow.actors.patterns`), found for a task or an error.

A task finds its kinds of task by how well its words fit each kind's tasks (`overlap`, with
the share of the kind's tasks that have each term, as the actor joins them); the kinds that fit
at least `MATCH_AT`, best first (at most `KINDS`), give their sequences, decision points and
the recoveries from the errors met in them. An error finds the recoveries from it (the same
normalised message).
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mnemoflow.actors.patterns import normalise_error, overlap, pattern_anchor
from mnemoflow.eventlog import EventLog, EventView
from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.derived import PatternLearned
from mnemoflow.eventlog.errors import MemoryNotFound, ValidationError
from mnemoflow.eventlog.schema import EPISODE_COMPLETED, INPUT_STREAM, PATTERNS_STREAM
from mnemoflow.projections.text import tokenize

if TYPE_CHECKING:
    from mnemoflow.pipeline.api.memory import Memory
    from mnemoflow.projections.pattern_rows import PatternRow

MATCH_AT = 0.3  # a kind of task whose tasks' words the task fits this well is its kind
KINDS = 3  # the kinds of task a task's patterns come from, at most
PATTERN_KINDS = ("tool_sequence", "decision_point", "error_recovery")
_ORDER = {kind: i for i, kind in enumerate(PATTERN_KINDS)}


@dataclass(frozen=True)
class BranchRecord:
    step: str
    support: int
    success_rate: float


@dataclass(frozen=True)
class PatternRecord:
    """A pattern as it stands: steps are "tool:action"; `episodes` the newest behind it."""

    pattern_id: str
    kind: str  # "tool_sequence", "decision_point", "error_recovery"
    namespace: str
    family: str  # the kind of task: its first episode's id
    task: str  # that episode's task
    domain: str | None
    steps: list[str]
    support: int
    success_rate: float
    episodes: list[str]
    point: str | None = None  # decision_point: the step after which they part (None: first)
    branches: list[BranchRecord] = field(default_factory=list)
    error: str | None = None  # error_recovery: the error (normalised) and what followed it
    recovery: list[str] = field(default_factory=list)
    relevance: float | None = None  # for a task: how well it fits the pattern's kind of task

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> PatternRecord:
        branches = [BranchRecord(**b) for b in doc["branches"]]
        return cls(**(doc | {"branches": branches}))

    @classmethod
    def of_row(cls, row: PatternRow, namespace: str, relevance: float | None) -> PatternRecord:
        return cls(
            pattern_id=row.pattern_id,
            kind=row.kind,
            namespace=namespace,
            family=row.family,
            task=row.task,
            domain=row.domain,
            steps=row.steps,
            support=row.support,
            success_rate=row.success_rate,
            episodes=row.episodes,
            point=row.point,
            branches=[BranchRecord(b.step, b.support, b.success_rate) for b in row.branches],
            error=row.error,
            recovery=row.steps[1:] if row.kind == "error_recovery" else [],
            relevance=relevance,
        )


class Patterns:
    """A memory's learned patterns (`mem.patterns`): `find` and `get`."""

    def __init__(self, memory: Memory) -> None:
        self._memory = memory

    def find(
        self,
        namespace: str,
        *,
        task: str | None = None,
        error: str | None = None,
        kind: str | None = None,
        domain: str | None = None,
        k: int = 20,
    ) -> builtins.list[PatternRecord]:
        """The namespace's patterns that hold: for a task (its kinds of task's, best fit
        first), for an error (the recoveries from it), of one kind, of one domain; else all,
        the strongest first (support, then success rate)."""
        from mnemoflow.projections.pattern_rows import family_terms, pattern_rows

        if kind is not None and kind not in PATTERN_KINDS:
            raise ValidationError(f"kind must be one of {', '.join(PATTERN_KINDS)}")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise ValidationError("k must be a whole number from 1 to 1000")
        wanted = None if error is None else normalise_error(check.text(error, self._settings))
        namespace_id = self._memory._caught_up(namespace, derived=True)
        con = self._memory.runtime.projector.duck.con
        fits: dict[str, float] | None = None
        if task is not None:
            terms = tokenize(check.text(task, self._settings))
            families = family_terms(con, namespace_id)
            scored = {f: overlap(terms, shares) for f, shares in families.items()}
            best = sorted((f for f, s in scored.items() if s >= MATCH_AT), key=lambda f: -scored[f])
            fits = {f: round(scored[f], 4) for f in best[:KINDS]}
            if not fits:
                return []
        rows = pattern_rows(
            con,
            namespace_id,
            kind=kind,
            families=None if fits is None else list(fits),
            error=wanted,
            limit=k if fits is None else 1000,
        )
        rows = [r for r in rows if domain is None or r.domain == domain]
        if fits is not None:
            rows.sort(key=lambda r: (-_relevance(r, fits), _ORDER[r.kind], -r.support))
        return [
            PatternRecord.of_row(r, namespace, None if fits is None else _relevance(r, fits))
            for r in rows[:k]
        ]

    def get(self, pattern_id: str, namespace: str | None = None) -> PatternRecord:
        """A pattern as it stands (MemoryNotFound: no such pattern, or not in `namespace`)."""
        from mnemoflow.projections.pattern_rows import pattern_by_id

        self._memory._caught_up(None, derived=True)
        row = pattern_by_id(self._memory.runtime.projector.duck.con, pattern_id)
        name = None if row is None else self._memory.log.namespace_name(row.namespace)
        if row is None or (namespace is not None and name != namespace):
            raise MemoryNotFound(f"no pattern {pattern_id!r} in this log")
        return PatternRecord.of_row(row, str(name), None)

    @property
    def _settings(self) -> Any:
        return self._memory.settings.log


def _relevance(row: PatternRow, fits: dict[str, float]) -> float:
    """How well the task fits the kind of task a pattern belongs to (a recovery: the best of
    the kinds it was met in)."""
    return max((fits[f] for f in (row.family, *row.families) if f in fits), default=0.0)


def pattern_trail(event_log: EventLog, pattern_id: str) -> list[EventView]:
    """The events that logged a pattern, and the completion of each episode behind it (each
    event names the newest of them, and is caused by one); none when the id is no
    pattern's (or it is erased)."""
    anchor = pattern_anchor(pattern_id)
    if anchor is None:
        return []
    stream = event_log.stream(PATTERNS_STREAM)
    stream.refresh()
    trail, episodes, causes = [], {}, set()
    for record in stream.read(memory_id=anchor):
        payload = event_log.open_payload(record)
        if isinstance(payload, PatternLearned) and payload.pattern_id == pattern_id:
            trail.append(event_log.view(PATTERNS_STREAM, record))
            episodes.update(dict.fromkeys(payload.episodes))
            if record.causation is not None:
                causes.add(record.causation.position)
    completions = [
        r for e in episodes for r in event_log.input.read(memory_id=e, kind=EPISODE_COMPLETED)
    ]
    named = {r.position for r in completions}
    completions += [r for p in sorted(causes - named) for r in event_log.input.read(p, p)]
    return trail + [event_log.view(INPUT_STREAM, r) for r in completions]
