"""mem0's add and search, for agents written against mem0: `user_id` is the namespace."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.eventlog import Receipt
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.errors import ProjectionLag
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.metrics import Metrics
from mnemoflow.pipeline.http.models import Mem0AddIn, Mem0SearchIn, Mem0SearchOut


def add_routes(app: FastAPI, memory: Memory, guard: Guard, metrics: Metrics) -> None:
    authorised = Depends(guard.caller)
    allow = guard.allow

    @app.post("/memories/add", tags=["mem0-compatible"])
    def mem0_add(body: Mem0AddIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """mem0's add: `user_id` is the namespace. The result says what became of it, as
        mem0's does, once the consolidator has read it: ADD (a memory of its own), UPDATE (it
        supersedes `previous_memory`), NONE (a duplicate, merged into the memory `id`). If
        the consolidator has not read it within [query] wait_timeout, ADD, with `pending`."""
        allow(key, body.user_id)
        r = memory.store(body.text, body.user_id, body.metadata)
        return {"results": [_what_happened(memory, r, body.text)]}

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


def _what_happened(memory: Memory, r: Receipt, text: str) -> dict[str, Any]:
    assert r.memory_id is not None
    try:
        decided = memory.runtime.decision(
            r.position, r.memory_id, memory.settings.query.wait_timeout
        )
    except ProjectionLag:
        return {"id": r.memory_id, "memory": text, "event": "ADD", "pending": True}
    if decided is None:
        return {"id": r.memory_id, "memory": text, "event": "ADD"}
    earlier = memory.get(decided.target)
    if decided.decision == "duplicate":
        return {"id": decided.target, "memory": text, "event": "NONE"}
    previous = None if earlier is None else earlier.text
    return {"id": r.memory_id, "memory": text, "event": "UPDATE", "previous_memory": previous}
