"""How the CLI shows receipts, reports, events and memories: readable lines, or JSON."""

from __future__ import annotations

import json

from mnemoflow.actors.query.hit import Hit
from mnemoflow.eventlog import EventView
from mnemoflow.pipeline.api.record import MemoryRecord
from mnemoflow.pipeline.api.wire import receipt_json, record_json, report_json

__all__ = [
    "event_line",
    "explain_hit",
    "receipt_json",
    "record_json",
    "report_json",
    "row_line",
    "summary",
]


def event_line(e: EventView) -> str:
    if e.erased:
        content = "[erased]"
    elif e.text is not None:
        content = json.dumps(e.text, ensure_ascii=False)
        if e.metadata:
            content += " " + json.dumps(e.metadata, ensure_ascii=False)
    else:
        content = json.dumps(e.payload, ensure_ascii=False)
    return (
        f"{e.position:>8}  {e.recorded_at:%Y-%m-%dT%H:%M:%S}Z  {e.kind:<18} "
        f"{e.namespace:<16} {e.memory_id or '-':<32} {content}"
    )


def row_line(row: MemoryRecord) -> str:
    text = "[erased]" if row.text is None else json.dumps(row.text, ensure_ascii=False)
    return f"{row.memory_id}  {row.status:<9} v{row.version}  {row.namespace:<16} {text}"


def summary(e: EventView) -> str:
    if e.text is not None:
        return json.dumps(e.text, ensure_ascii=False)
    payload = dict(e.payload or {})
    for bulky in ("vector", "context_vector"):
        if payload.pop(bulky, None):
            payload[bulky] = "..."
    return json.dumps(payload, ensure_ascii=False)


def explain_hit(hit: Hit) -> str:
    """Why a memory ranked: its channels, its state, and the events behind it."""
    channels = ", ".join(f"{c} {v:.3f}" for c, v in sorted(hit.channels.items()))
    origin = []
    for p in hit.provenance:
        if "stream" in p:
            origin.append(f"{p['kind']}@{p['stream']}:{p['position']}")
        else:
            origin += [f"{key} {value}" for key, value in p.items()]
    state = f"{hit.status}, {hit.category or 'uncategorised'}, zone {hit.zone or '-'}"
    return (
        f"       {hit.memory_id}  channels: {channels or 'neighbour only'}\n"
        f"       {state}\n"
        f"       from {'; '.join(origin)}"
    )
