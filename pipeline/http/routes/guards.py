"""Guardrails: rules about actions, and the check an agent makes before it acts. A key
reaches its own namespaces' rules; a check that warns or blocks is recorded with the key's id
as who asked."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import receipt_json
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.models import GuardAddIn, GuardCheckIn, GuardRemoveIn, ReceiptOut


def add_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)
    allow = guard.allow

    @app.post("/guards", response_model=ReceiptOut, tags=["guardrails"])
    def add(body: GuardAddIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Add a rule; its id is the receipt's `memory_id`."""
        allow(key, body.namespace)
        r = memory.guards.add(
            body.text, body.namespace, body.action, pattern=body.pattern, event_id=body.event_id
        )
        return receipt_json(r)

    @app.get("/namespaces/{namespace}/guards", tags=["guardrails"])
    def list_rules(namespace: str, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """The rules in force, then the warnings learned from the episodes."""
        allow(key, namespace)
        return [r.to_json() for r in memory.guards.list(namespace)]

    @app.post("/guards/remove", response_model=ReceiptOut, tags=["guardrails"])
    def remove(body: GuardRemoveIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow(key, body.namespace)
        return receipt_json(memory.guards.remove(body.rule_id, body.namespace, body.reason))

    @app.post("/guard/check", tags=["guardrails"])
    def check(body: GuardCheckIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """allow, warn or block, with the rules that matched and why."""
        allow(key, body.namespace)
        asked_by = None if key is None else key.id
        return memory.guards.check(body.action, body.namespace, asked_by=asked_by).to_json()
