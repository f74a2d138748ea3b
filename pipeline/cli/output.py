"""How the CLI shows receipts, reports, events and memories: readable lines, or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from mnemoflow.actors.query.hit import Hit
from mnemoflow.eventlog import EventView
from mnemoflow.pipeline.api.record import MemoryRecord
from mnemoflow.pipeline.api.wire import receipt_json, record_json, report_json

__all__ = [
    "audit_lines",
    "event_line",
    "explain_hit",
    "receipt_json",
    "record_json",
    "report_json",
    "row_line",
    "stats_lines",
    "summary",
    "table",
]


def table(header: Sequence[str], rows: Iterable[Sequence[object]], right: int = 0) -> list[str]:
    """Columns as wide as their widest cell, two spaces apart; the first `right` columns
    after the first are numbers (thousands separated, right-aligned), the rest text."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in [list(header), *cells]) for i in range(len(header))]
    numeric = set(range(1, 1 + right))

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in numeric else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(header), *(line(r) for r in cells)]


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def stats_lines(stats: dict[str, Any]) -> list[str]:
    """`mnemo stats`: one table each for streams, actors and projections, then counts."""
    lines = table(["stream", "events"], [(n, v["events"]) for n, v in stats["streams"].items()], 1)
    actors = stats["actors"].items()
    lines += [
        "",
        *table(
            ["actor", "processed", "lag", "events/s"],
            [(name, a["processed"], a["lag"], a.get("events_per_s")) for name, a in actors],
            3,
        ),
    ]
    projected = [
        (f"{name}/{stream}", applied, proj["lag"][stream])
        for name, proj in stats["projections"].items()
        for stream, applied in proj["applied"].items()
    ]
    lines += ["", *table(["projection", "applied", "lag"], projected, 2)]
    memories = stats["memories"]
    counts = [(status, n) for status, n in sorted(memories["by_status"].items())]
    counts += [("total", memories["total"]), ("vectors", memories["vectors"])]
    lines += ["", *table(["memories", "count"], counts, 1)]
    disk = [(part, _size(n)) for part, n in stats["disk_bytes"].items()]
    lines += ["", *table(["disk", "size"], disk, 1)]
    return lines


def _size(n: int) -> str:
    if n < 1024:
        return f"{n:,} B"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:,.1f} {unit}"


def audit_lines(trail: Sequence[EventView]) -> list[str]:
    """`mnemo audit`: every event behind a memory, one aligned row each."""
    rows = [
        (
            f"{e.recorded_at:%Y-%m-%dT%H:%M:%S}Z",
            f"{e.stream}:{e.position}",
            e.kind,
            e.actor,
            e.hash[:12],
            "-" if e.causation is None else f"{e.causation.stream}:{e.causation.position}",
            "[erased]" if e.erased else summary(e),
        )
        for e in trail
    ]
    return table(["recorded", "event", "kind", "by", "hash", "caused by", "what"], rows)


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
