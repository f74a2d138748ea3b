"""`mnemo bench transfer`: export and import rates.

A log of N stored memories (16 namespaces) with, after them, an update of one in 20, feedback
on one in 50 and a forget of one in 100, is exported to a JSON Lines file and imported into a
fresh log; then imported again (every row already there). Before the import, single stores
are timed with no backup and then while a backup of the log runs. The baseline, in the same process:
the same rows replayed through the plain calls (`store_many` in the import's batches of 500,
then one `update`, `feedback` or `forget` each, new ids), into another fresh log: what the
import adds is reading the file, keeping the ids and checking each is free. Import writes the
input only: what the actors derive from it costs what ingesting the same memories costs
(`mnemo bench ingest`).
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from mnemoflow.eventlog import EventLog, InputLog, LogSettings, StoreRequest
from mnemoflow.eventlog.backup import BackupReport, backup_log
from mnemoflow.pipeline.api.transfer import (
    FeedbackRow,
    ForgetRow,
    StoreRow,
    UpdateRow,
    export_lines,
    export_rows,
    import_rows,
)
from mnemoflow.pipeline.bench.log import scratch, synthetic_text
from mnemoflow.pipeline.bench.recall import percentiles

BATCH = 500  # the import's batch of stores


def run_transfer_bench(memories: int = 100_000, home: str | None = None) -> dict[str, Any]:
    settings = LogSettings(segment_bytes=32 << 20)
    began = datetime(2024, 1, 1, tzinfo=UTC)
    requests = [
        StoreRequest(synthetic_text(i), f"user-{i % 16}", {"seq": i}, began + timedelta(minutes=i))
        for i in range(memories)
    ]
    with scratch(home) as tmp:
        root = Path(tmp)
        with EventLog(root / "source", settings) as log:
            inputs = InputLog(log, actor="bench")
            ids = _fill(inputs, requests)
            changes = _change(inputs, ids)
            path = root / "export.jsonl"
            t = time.perf_counter()
            with path.open("w", encoding="utf-8") as out:
                stop = log.input.last_position
                for doc in export_rows(log, inputs, None, stop):
                    out.write(json.dumps(doc, ensure_ascii=False) + "\n")
            export_s = time.perf_counter() - t
            backup_figures = _backup_under_stores(log, inputs, root / "backup")
        rows = memories + changes
        with EventLog(root / "target", settings) as log:
            inputs = InputLog(log, actor="bench")
            imported, import_s = _import(inputs, path)
            again, again_s = _import(inputs, path)
        with EventLog(root / "baseline", settings) as log:
            baseline_s = _replay_plain(InputLog(log, actor="bench"), path)
        size = path.stat().st_size
    return {
        "memories": memories,
        "rows": rows,
        "changes": changes,
        "export_rows_per_s": round(rows / export_s),
        "export_bytes_per_row": round(size / rows, 1),
        "import_rows_per_s": round(rows / import_s),
        "import_added": imported["added"],
        "reimport_rows_per_s": round(rows / again_s),
        "reimport_added": again["added"],
        "baseline_plain_calls_rows_per_s": round(rows / baseline_s),
        "import_vs_plain_calls": round(baseline_s / import_s, 2),
        **backup_figures,
    }


def _backup_under_stores(log: EventLog, inputs: InputLog, into: Path) -> dict[str, Any]:
    """Single stores one after another, timed, with no backup and then while one runs."""

    def store(i: int) -> float:
        t = time.perf_counter()
        inputs.store(synthetic_text(i), f"user-{i % 16}")
        return time.perf_counter() - t

    quiet = [store(i) for i in range(400)]
    made: list[BackupReport] = []
    copying = threading.Thread(target=lambda: made.append(backup_log(log.directory, into, [])))
    copying.start()
    during: list[float] = []
    while copying.is_alive():
        during.append(store(len(during)))
    copying.join()
    return {
        "backup_seconds": made[0].seconds,
        "backup_bytes": made[0].bytes,
        "stores_during_backup": len(during),
        "store_without_backup": percentiles(quiet),
        "store_during_backup": percentiles(during),
    }


def _fill(inputs: InputLog, requests: list[StoreRequest]) -> list[str]:
    ids = []
    for i in range(0, len(requests), 2000):
        ids += [str(r.memory_id) for r in inputs.store_many(requests[i : i + 2000])]
    return ids


def _change(inputs: InputLog, ids: list[str]) -> int:
    changed = 0
    for i, memory_id in enumerate(ids):
        if i % 20 == 0:
            inputs.update(memory_id, synthetic_text(i + 7), {"seq": i, "v": 2})
            changed += 1
        if i % 50 == 1:
            inputs.feedback(memory_id, i % 100 != 1)
            changed += 1
        if i % 100 == 2:
            inputs.forget(memory_id, "bench")
            changed += 1
    return changed


def _replay_plain(inputs: InputLog, path: Path) -> float:
    """Seconds to append the file's rows with the plain calls, as new memories."""
    t = time.perf_counter()
    ids: dict[str, str] = {}
    stores: list[tuple[str, StoreRequest]] = []

    def flush() -> None:
        receipts = inputs.store_many([r for _, r in stores])
        ids.update((old, str(r.memory_id)) for (old, _), r in zip(stores, receipts, strict=True))
        stores.clear()

    with path.open("rb") as lines:
        for _, row in export_lines(lines):
            match row:
                case StoreRow():
                    request = StoreRequest(row.text, row.ns, row.metadata, row.occurred_at)
                    stores.append((row.memory_id, request))
                    if len(stores) >= BATCH:
                        flush()
                    continue
            if stores:
                flush()
            match row:
                case UpdateRow():
                    inputs.update(ids[row.memory_id], row.text, row.metadata, row.occurred_at)
                case FeedbackRow():
                    inputs.feedback(ids[row.memory_id], row.useful, row.note)
                case ForgetRow():
                    inputs.forget(ids[row.memory_id], row.reason)
    if stores:
        flush()
    return time.perf_counter() - t


def _import(inputs: InputLog, path: Path) -> tuple[dict[str, int], float]:
    t = time.perf_counter()
    with path.open("rb") as lines:
        report = import_rows(inputs, export_lines(lines), batch=BATCH)
    return {"added": report.added, "present": report.present}, time.perf_counter() - t


def format_transfer_bench(result: dict[str, Any]) -> str:
    return "\n".join(
        [
            f"export / import ({result['memories']:,} memories, {result['rows']:,} rows: "
            f"stores, then {result['changes']:,} updates, feedback and forgets)",
            f"  export                    {result['export_rows_per_s']:>10,} rows/s"
            f"   ({result['export_bytes_per_row']} bytes a row)",
            f"  import into a new log     {result['import_rows_per_s']:>10,} rows/s"
            f"   ({result['import_added']:,} events added)",
            f"  import again (no-op)      {result['reimport_rows_per_s']:>10,} rows/s"
            f"   ({result['reimport_added']} added)",
            f"  the plain calls, same rows {result['baseline_plain_calls_rows_per_s']:>9,} rows/s"
            f"   (import at {result['import_vs_plain_calls']:.2f}x of it)",
            f"  backup                    {result['backup_seconds']:>10} s"
            f"      ({result['backup_bytes']:,} bytes, {result['stores_during_backup']} stores"
            " went on meanwhile)",
            "  single store p50 / p99    "
            f"{result['store_without_backup']['p50_ms']:.2f} / "
            f"{result['store_without_backup']['p99_ms']:.2f} ms without a backup, "
            f"{result['store_during_backup']['p50_ms']:.2f} / "
            f"{result['store_during_backup']['p99_ms']:.2f} ms during one",
        ]
    )
