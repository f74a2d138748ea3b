"""mem0's add and search, for agents written against mem0: `user_id` is the namespace."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.metrics import Metrics
from mnemoflow.pipeline.http.models import Mem0AddIn, Mem0SearchIn, Mem0SearchOut


def add_routes(app: FastAPI, memory: Memory, guard: Guard, metrics: Metrics) -> None:
    authorised = Depends(guard.caller)
    allow = guard.allow

    @app.post("/memories/add", tags=["mem0-compatible"])
    def mem0_add(body: Mem0AddIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """mem0's add: `user_id` is the namespace."""
        allow(key, body.user_id)
        r = memory.store(body.text, body.user_id, body.metadata)
        return {"results": [{"id": r.memory_id, "memory": body.text, "event": "ADD"}]}

    @app.post("/memories/search", response_model=Mem0SearchOut, tags=["mem0-compatible"])
    def mem0_search(body: Mem0SearchIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """mem0's search: `user_id` is the namespace, `limit` is k. It sees every write
        acknowledged before it began, as mem0's users expect of an add then a search (it
        waits for the actors, up to [query] wait_timeout)."""
        allow(key, body.user_id)
        seen = memory.log.input.last_position
        with metrics.recall_seconds.time():
            hits = memory.recall(body.query, body.user_id, body.limit, min_position=seen)
        return {
            "results": [
                {"id": h.memory_id, "memory": h.text, "score": h.score, "metadata": h.metadata}
                for h in hits
            ]
        }
