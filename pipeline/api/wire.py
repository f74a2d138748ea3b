"""The JSON shapes of what the API returns, both ways: the HTTP service writes them and
`Memory.connect` reads them back into the same objects `Memory.open` returns."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from mnemoflow.actors.query.hit import Hit
from mnemoflow.eventlog import Causation, EventView, LogReport, Receipt
from mnemoflow.eventlog.heads import Lost
from mnemoflow.eventlog.verify import VerifyReport
from mnemoflow.pipeline.api.record import Contradiction, MemoryRecord


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {**dataclasses.asdict(receipt), "recorded_at": receipt.recorded_at.isoformat()}


def receipt_of(doc: dict[str, Any]) -> Receipt:
    recorded = _time(doc["recorded_at"])
    assert recorded is not None
    return Receipt(doc["stream"], doc["position"], doc["event_id"], doc["memory_id"], recorded)


def record_json(record: MemoryRecord) -> dict[str, Any]:
    doc = dataclasses.asdict(record)
    for key in ("occurred_at", "recorded_at"):
        doc[key] = _iso(doc[key])
    return doc


def contradiction_json(c: Contradiction) -> dict[str, Any]:
    return {
        "memory": record_json(c.memory),
        "contradicts": record_json(c.contradicts),
        "superseded": c.superseded,
        "provenance": c.provenance,
    }


def contradiction_of(doc: dict[str, Any]) -> Contradiction:
    return Contradiction(
        record_of(doc["memory"]),
        record_of(doc["contradicts"]),
        doc["superseded"],
        doc["provenance"],
    )


def record_of(doc: dict[str, Any]) -> MemoryRecord:
    values = dict(doc)
    values["occurred_at"] = _time(doc["occurred_at"])
    values["recorded_at"] = _time(doc["recorded_at"])
    return MemoryRecord(**values)


def hit_of(doc: dict[str, Any]) -> Hit:
    return Hit(
        memory_id=doc["memory_id"],
        text=doc["text"],
        score=doc["score"],
        channels=doc["channels"],
        metadata=doc["metadata"],
        occurred_at=_time(doc["occurred_at"]),
        status=doc["status"],
        namespace=doc["namespace"],
        provenance=doc["provenance"],
        category=doc.get("category"),
        zone=doc.get("zone"),
    )


def event_of(doc: dict[str, Any]) -> EventView:
    recorded = _time(doc["recorded_at"])
    assert recorded is not None
    cause = doc["causation"]
    return EventView(
        stream=doc["stream"],
        position=doc["position"],
        event_id=doc["event_id"],
        kind=doc["kind"],
        namespace=doc["namespace"],
        memory_id=doc["memory_id"],
        recorded_at=recorded,
        occurred_at=_time(doc["occurred_at"]),
        actor=doc["actor"],
        causation=None if cause is None else Causation(cause["stream"], cause["position"]),
        hash=doc["hash"],
        prev_hash=doc["prev_hash"],
        erased=doc["erased"],
        payload=doc["payload"],
    )


def report_json(report: LogReport) -> dict[str, Any]:
    doc = dataclasses.asdict(report)
    doc["streams"] = {
        r.stream: {"ok": r.ok, "checked": r.checked, "lost": [list(x) for x in lost_rows(r)]}
        for r in report.streams
    }
    return doc


def lost_rows(report: VerifyReport) -> list[tuple[int, int, str]]:
    return [(x.first, x.last, x.reason) for x in report.lost]


def report_of(doc: dict[str, Any]) -> LogReport:
    streams = tuple(
        VerifyReport(
            ok=s["ok"],
            checked=s["checked"],
            stream=name,
            lost=tuple(Lost(a, b, c) for a, b, c in s.get("lost", [])),
        )
        for name, s in doc["streams"].items()
    )
    fields = {k: doc[k] for k in ("ok", "checked", "first_bad_position", "stream", "segment")}
    return LogReport(**fields, reason=doc["reason"], streams=streams)
