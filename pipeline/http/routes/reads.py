"""Routes that read: recall, one memory, a namespace's memories and contradictions, a
memory's history and its full audit trail. A key reads only its namespaces' memories."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.eventlog.errors import MemoryNotFound, ValidationError
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import contradiction_json, record_json
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.metrics import Metrics
from mnemoflow.pipeline.http.models import EventOut, HitOut, RecallIn, RowOut


def add_routes(app: FastAPI, memory: Memory, guard: Guard, metrics: Metrics) -> None:
    authorised = Depends(guard.caller)
    allow, allow_memory = guard.allow, guard.allow_memory

    @app.post("/recall", response_model=list[HitOut], tags=["recall"])
    def recall(body: RecallIn, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """The k memories that best answer the query, with channel scores and provenance."""
        allow(key, body.namespace)
        with metrics.recall_seconds.time():
            hits = memory.recall(
                body.query,
                body.namespace,
                body.k,
                min_position=body.min_position,
                as_of=body.as_of,
                filters=body.filters,
                now=body.now,
            )
        return [h.to_json() for h in hits]

    @app.get("/memories/{memory_id}", response_model=RowOut, tags=["memories"])
    def get(memory_id: str, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, memory_id)
        row = memory.get(memory_id)
        if row is None:
            raise MemoryNotFound(f"no memory {memory_id!r} in the projections yet")
        return record_json(row)

    @app.get("/namespaces/{namespace}/memories", response_model=list[RowOut], tags=["memories"])
    def memories(
        namespace: str,
        limit: int = 100,
        offset: int = 0,
        status: str | None = None,
        key: ApiKey | None = authorised,
    ) -> list[dict[str, Any]]:
        allow(key, namespace)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset at least 0")
        rows = memory.memories(namespace, status=status, limit=limit, offset=offset)
        return [record_json(r) for r in rows]

    @app.get("/namespaces/{namespace}/contradictions", tags=["memories"])
    def contradictions(namespace: str, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """Memories the linker found contradicting, which one supersedes, and provenance."""
        allow(key, namespace)
        return [contradiction_json(c) for c in memory.contradictions(namespace)]

    @app.get("/history/{memory_id}", response_model=list[EventOut], tags=["audit"])
    def history(memory_id: str, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """The input events of a memory, oldest first."""
        allow_memory(key, memory_id)
        return [e.to_json() for e in memory.history(memory_id)]

    @app.get("/audit/{memory_id}", response_model=list[EventOut], tags=["audit"])
    def audit(memory_id: str, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """Every event, in every stream, that produced, changed, linked, consolidated or
        boosted the memory, with stream, position, actor, time and hash."""
        allow_memory(key, memory_id)
        return [e.to_json() for e in memory.audit(memory_id)]
