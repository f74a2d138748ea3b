"""Routes that append to the log: store, update, forget, feedback, erase. Each answers with
the receipt once the event is durable."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.eventlog import StoreRequest
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import receipt_json
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.models import (
    EraseIn,
    FeedbackIn,
    ForgetIn,
    ReceiptOut,
    StoreIn,
    StoreManyIn,
    UpdateIn,
)


def add_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)
    allow, allow_memory = guard.allow, guard.allow_memory

    @app.post("/store", response_model=ReceiptOut, tags=["memories"])
    def store(body: StoreIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Store a memory; the receipt's position is durable when this returns."""
        allow(key, body.namespace)
        (r,) = memory.store_many([_request(body)])
        return receipt_json(r)

    @app.post("/store_many", response_model=list[ReceiptOut], tags=["memories"])
    def store_many(body: StoreManyIn, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """Store up to 1,000 memories with one durable write; all are checked first."""
        for item in body.items:
            allow(key, item.namespace)
        return [receipt_json(r) for r in memory.store_many([_request(i) for i in body.items])]

    @app.post("/update", response_model=ReceiptOut, tags=["memories"])
    def update(body: UpdateIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, body.memory_id)
        r = memory.update(body.memory_id, body.text, body.metadata, body.occurred_at, body.event_id)
        return receipt_json(r)

    @app.post("/forget", response_model=ReceiptOut, tags=["memories"])
    def forget(body: ForgetIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, body.memory_id)
        return receipt_json(memory.forget(body.memory_id, body.reason, body.event_id))

    @app.post("/feedback", response_model=ReceiptOut, tags=["memories"])
    def feedback(body: FeedbackIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, body.memory_id)
        r = memory.feedback(body.memory_id, body.useful, body.note, body.event_id)
        return receipt_json(r)

    @app.post("/erase", response_model=ReceiptOut, tags=["memories"])
    def erase(body: EraseIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Destroy the namespace's key: its text is unreadable everywhere, for good."""
        allow(key, body.namespace)
        return receipt_json(memory.erase(body.namespace))


def _request(body: StoreIn) -> StoreRequest:
    return StoreRequest(body.text, body.namespace, body.metadata, body.occurred_at, body.event_id)
