"""Episodes through the Python API: `mem.episodes.start/step/complete/get/list`, and the
context a new task gets from past ones (`Memory.context`).

Past episodes are ranked for a task by how much their task's words match it (BM25 over the
namespace's completed episodes, with the memories' tokenizer; the projection keeps each task's
terms) and how near it they are by meaning (the cosine of the task embeddings the embedder
made: the `NEAREST` from FAISS, at `NEAR_ENOUGH` or nearer), half each; weighted by how well
they went (`0.5 + 0.5 * score`: a failed episode still counts, half as much, for what it
warns of).
The completed episodes are kept in memory for it (`projections.episode_index`).
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mnemoflow.eventlog.episodes import Episode, EpisodeLog
from mnemoflow.pipeline.api.patterns import PatternRecord
from mnemoflow.projections.text import tokenize

if TYPE_CHECKING:  # the projection's rows: not loaded by a client of a service
    from mnemoflow.actors.query.hit import Hit
    from mnemoflow.pipeline.api.memory import Memory
    from mnemoflow.projections.episode_index import EpisodeIndex
    from mnemoflow.projections.episode_rows import EpisodeRow, StepRow

_K1, _B = 1.2, 0.75
NEAREST = 50  # tasks nearest by meaning a context ranks beside those sharing its words
# ...those at least this near: all-MiniLM-L6-v2 puts "plan travel to Japan" at 0.60 from "Book
# a flight to Kyoto", "deploy the payments service" at 0.46 from "Deploy the search service"
# and at 0.13 from "Write the quarterly report", unrelated tasks near 0.
NEAR_ENOUGH = 0.25


@dataclass(frozen=True)
class StepRecord:
    tool: str
    action: str
    ok: bool
    error: str | None
    latency_ms: float | None
    tokens: int | None
    observation: str | None
    at: datetime | None


@dataclass(frozen=True)
class EpisodeRecord:
    episode_id: str
    namespace: str
    task: str | None  # None once erased
    domain: str | None
    language: str | None
    tags: list[str]
    started_at: datetime | None
    outcome: str | None  # "success", "failure"; None while under way
    score: float | None
    result: str | None
    error: str | None
    duration_ms: float | None
    steps: list[StepRecord] = field(default_factory=list)
    relevance: float | None = None  # in a task's context: how well it matched

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["started_at"] = _iso(self.started_at)
        for step in doc["steps"]:
            step["at"] = _iso(step["at"])
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> EpisodeRecord:
        steps = [StepRecord(**(step | {"at": _time(step["at"])})) for step in doc["steps"]]
        return cls(**(doc | {"started_at": _time(doc["started_at"]), "steps": steps}))

    @classmethod
    def of_row(
        cls, row: EpisodeRow, namespace: str, steps: Sequence[StepRow], relevance: float | None
    ) -> EpisodeRecord:
        return cls(
            episode_id=row.episode_id,
            namespace=namespace,
            task=row.task,
            domain=row.domain,
            language=row.language,
            tags=row.tags,
            started_at=row.started_at,
            outcome=None if row.success is None else "success" if row.success else "failure",
            score=row.score,
            result=row.result,
            error=row.error,
            duration_ms=row.duration_ms,
            steps=[
                StepRecord(
                    s.tool, s.action, s.ok, s.error, s.latency_ms, s.tokens, s.observation, s.at
                )
                for s in steps
            ],
            relevance=relevance,
        )

    @classmethod
    def of_events(cls, episode: Episode) -> EpisodeRecord:
        started, done = episode.started, episode.completed
        return cls(
            episode_id=episode.episode_id,
            namespace=episode.namespace,
            task=None if started is None else started.task,
            domain=None if started is None else started.domain,
            language=None if started is None else started.language,
            tags=[] if started is None else list(started.tags),
            started_at=episode.started_at,
            outcome=None if done is None else "success" if done.success else "failure",
            score=None if done is None else done.score,
            result=None if done is None else done.result,
            error=None if done is None else done.error,
            duration_ms=None if done is None else done.duration_ms,
            steps=[
                StepRecord(
                    s.tool, s.action, s.ok, s.error, s.latency_ms, s.tokens, s.observation, at
                )
                for at, s in episode.steps
                if s is not None
            ],
        )


@dataclass(frozen=True)
class TaskContext:
    """What a new task gets: the past episodes that bear on it, the patterns learned from
    its kind of task, and the memories."""

    episodes: list[EpisodeRecord]
    patterns: list[PatternRecord]
    memories: list[Hit]

    def to_json(self) -> dict[str, Any]:
        return {
            "episodes": [e.to_json() for e in self.episodes],
            "patterns": [p.to_json() for p in self.patterns],
            "memories": [h.to_json() for h in self.memories],
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


class Episodes(EpisodeLog):
    """A memory's episodes (`mem.episodes`): `start`, `step`, `complete` (see
    `mnemoflow.eventlog.episodes`), and `get`, `list`, read as records."""

    def __init__(self, memory: Memory) -> None:
        super().__init__(memory._inputs, memory.log)
        self._memory = memory

    def get(self, episode_id: str) -> EpisodeRecord:
        """The episode as its events tell it (MemoryNotFound: no such episode)."""
        return EpisodeRecord.of_events(self.events(episode_id))

    def list(
        self, namespace: str, *, domain: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[EpisodeRecord]:
        """A namespace's episodes, oldest first, from the projections."""
        from mnemoflow.projections.episode_rows import step_rows

        rows = self._rows(namespace, domain=domain, limit=limit, offset=offset)
        steps = step_rows(self._memory.runtime.projector.duck.con, [r.episode_id for r in rows])
        return [EpisodeRecord.of_row(r, namespace, steps[r.episode_id], None) for r in rows]

    def _rows(self, namespace: str, **query: Any) -> builtins.list[EpisodeRow]:
        from mnemoflow.projections.episode_rows import episode_rows

        namespace_id = self._memory._caught_up(namespace)
        return episode_rows(self._memory.runtime.projector.duck.con, namespace_id, **query)

    def relevant(
        self, task: str, namespace: str, *, domain: str | None, tags: Sequence[str], k: int
    ) -> builtins.list[EpisodeRecord]:
        """The k completed episodes that bear most on `task` (see the module's note)."""
        from mnemoflow.projections.vector_projection import TASK

        namespace_id = self._memory._caught_up(namespace)
        runtime = self._memory.runtime
        query = tokenize(task)
        vector = runtime.engine.query_vector(task)
        nearest = runtime.projector.vectors.search(namespace_id, vector, NEAREST, TASK)
        similar = [(doc, cosine) for doc, cosine in nearest if cosine >= NEAR_ENOUGH]
        ranked = self.index.rank(
            namespace_id, query, similar, domain=domain, tags=tags, k=k, k1=_K1, b=_B
        )
        steps = self.index.steps(namespace_id, [row.episode_id for row, _ in ranked])
        return [
            EpisodeRecord.of_row(row, namespace, steps[row.episode_id], relevance)
            for row, relevance in ranked
        ]

    @functools.cached_property
    def index(self) -> EpisodeIndex:
        """The completed episodes kept in memory for ranking (`projections.episode_index`)."""
        from mnemoflow.projections.episode_index import EpisodeIndex

        runtime = self._memory.runtime
        return EpisodeIndex(
            lambda: runtime.projector.duck.con, lambda: runtime.projector.duck.changes
        )
