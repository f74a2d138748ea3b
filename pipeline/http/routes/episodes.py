"""Episodes: an agent's tasks, step by step, and the context a new task gets from them. A key
reaches the episodes of its namespaces only."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import receipt_json
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.models import (
    ContextIn,
    EpisodeCompleteIn,
    EpisodeStartIn,
    EpisodeStepIn,
    EpisodeStepsIn,
    ReceiptOut,
)


def add_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)
    allow, allow_memory = guard.allow, guard.allow_memory

    @app.post("/episodes", response_model=ReceiptOut, tags=["episodes"])
    def start(body: EpisodeStartIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Start an episode; its id is the receipt's `memory_id`."""
        allow(key, body.namespace)
        r = memory.episodes.start(
            body.task,
            body.namespace,
            domain=body.domain,
            language=body.language,
            tags=body.tags,
            occurred_at=body.occurred_at,
            event_id=body.event_id,
        )
        return receipt_json(r)

    @app.post("/episodes/{episode_id}/steps", response_model=ReceiptOut, tags=["episodes"])
    def step(
        episode_id: str, body: EpisodeStepIn, key: ApiKey | None = authorised
    ) -> dict[str, Any]:
        """Log a step (409 once the episode is completed)."""
        allow_memory(key, episode_id)
        r = memory.episodes.step(
            episode_id,
            body.tool,
            body.action,
            error=body.error,
            latency_ms=body.latency_ms,
            tokens=body.tokens,
            observation=body.observation,
            occurred_at=body.occurred_at,
            event_id=body.event_id,
        )
        return receipt_json(r)

    @app.post(
        "/episodes/{episode_id}/steps/batch", response_model=list[ReceiptOut], tags=["episodes"]
    )
    def steps(
        episode_id: str, body: EpisodeStepsIn, key: ApiKey | None = authorised
    ) -> list[dict[str, Any]]:
        """Up to 1,000 steps with one durable write; all are checked first."""
        allow_memory(key, episode_id)
        given = [s.model_dump(exclude_none=True) for s in body.steps]
        return [receipt_json(r) for r in memory.episodes.step_many(episode_id, given)]

    @app.post("/episodes/{episode_id}/complete", response_model=ReceiptOut, tags=["episodes"])
    def complete(
        episode_id: str, body: EpisodeCompleteIn, key: ApiKey | None = authorised
    ) -> dict[str, Any]:
        """Complete it, with success or failure (409 if it already is)."""
        allow_memory(key, episode_id)
        r = memory.episodes.complete(
            episode_id,
            body.success,
            score=body.score,
            result=body.result,
            error=body.error,
            occurred_at=body.occurred_at,
            event_id=body.event_id,
        )
        return receipt_json(r)

    @app.get("/episodes/{episode_id}", tags=["episodes"])
    def get(episode_id: str, key: ApiKey | None = authorised) -> dict[str, Any]:
        """The episode as its events tell it: task, steps, outcome."""
        allow_memory(key, episode_id)
        return memory.episodes.get(episode_id).to_json()

    @app.get("/namespaces/{namespace}/episodes", tags=["episodes"])
    def list_episodes(
        namespace: str,
        domain: str | None = None,
        limit: int = 100,
        offset: int = 0,
        key: ApiKey | None = authorised,
    ) -> list[dict[str, Any]]:
        allow(key, namespace)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset at least 0")
        found = memory.episodes.list(namespace, domain=domain, limit=limit, offset=offset)
        return [e.to_json() for e in found]

    @app.post("/context", tags=["episodes"])
    def context(body: ContextIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """For a new task: the past episodes that bear on it and the memories."""
        allow(key, body.namespace)
        found = memory.context(
            body.task, body.namespace, domain=body.domain, tags=body.tags, k=body.k
        )
        return found.to_json()
