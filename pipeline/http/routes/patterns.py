"""Patterns learned from completed episodes: a namespace's, found for a task or an error, and
one by its id. A key reaches its own namespaces' patterns."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.http.guard import Guard


def add_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)

    @app.get("/namespaces/{namespace}/patterns", tags=["episodes"])
    def find(
        namespace: str,
        task: str | None = None,
        error: str | None = None,
        kind: str | None = None,
        domain: str | None = None,
        k: int = 20,
        key: ApiKey | None = authorised,
    ) -> list[dict[str, Any]]:
        """The patterns that hold: for a task (its kinds of task's, best fit first), for an
        error (the recoveries from it), of one kind (tool_sequence, decision_point,
        error_recovery); else the strongest first."""
        guard.allow(key, namespace)
        found = memory.patterns.find(
            namespace, task=task, error=error, kind=kind, domain=domain, k=k
        )
        return [p.to_json() for p in found]

    @app.get("/patterns/{pattern_id}", tags=["episodes"])
    def get(pattern_id: str, key: ApiKey | None = authorised) -> dict[str, Any]:
        """A pattern as it stands; its audit trail is at /audit/{pattern_id}."""
        guard.allow_memory(key, pattern_id)
        return memory.patterns.get(pattern_id).to_json()
