"""`mnemo bench log`: durable append and scan rates of the event log on this machine.

Figures, not assertions: the machines are shared and noisy. Each run reports absolute rates
and, as a same-process baseline, the rate of a bare ``write + fdatasync`` loop of the same
byte volume, so a ratio says how much the log costs over the disk itself.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from mnemoflow.eventlog import EventLog, InputLog, LogSettings, StoreRequest

_SENTENCES = [
    "{name} moved to {city} in {month} and started working at {org}.",
    "{name} prefers {food} over anything else, especially on Fridays.",
    "{name} is planning a trip to {city} with friends next {month}.",
    "{name}'s doctor recommended more sleep after the check-up in {month}.",
    "{name} adopted a dog named {pet} last {month}.",
]
_NAMES = ["Alice", "Bob", "Chen", "Dara", "Emeka", "Farah", "Goran", "Hana", "Ivan", "Jun"]
_CITIES = ["Paris", "Lagos", "Osaka", "Lima", "Oslo", "Pune", "Quito", "Rome", "Seoul"]
_MONTHS = ["January", "March", "May", "July", "September", "November"]
_ORGS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"]
_FOODS = ["ramen", "tacos", "falafel", "pho", "pierogi", "injera"]
_PETS = ["Biscuit", "Miso", "Pepper", "Ziggy", "Nala"]


def synthetic_text(i: int) -> str:
    """A varied, deterministic memory sentence (not one sentence repeated)."""
    template = _SENTENCES[i % len(_SENTENCES)]
    return template.format(
        name=_NAMES[(i // 5) % len(_NAMES)],
        city=_CITIES[(i * 7) % len(_CITIES)],
        month=_MONTHS[(i * 3) % len(_MONTHS)],
        org=_ORGS[(i * 11) % len(_ORGS)],
        food=_FOODS[(i * 13) % len(_FOODS)],
        pet=_PETS[(i * 17) % len(_PETS)],
    )


def _requests(start: int, n: int) -> list[StoreRequest]:
    return [
        StoreRequest(synthetic_text(i), f"user-{i % 16}", {"seq": i})
        for i in range(start, start + n)
    ]


def _append_rate(inputs: InputLog, batch: int, events: int, start: int) -> float:
    batches = [_requests(start + i, batch) for i in range(0, events, batch)]
    began = time.perf_counter()
    for requests in batches:
        inputs.store_many(requests)
    return (len(batches) * batch) / (time.perf_counter() - began)


def _concurrent_rate(
    log: EventLog, inputs: InputLog, threads: int, per_thread: int
) -> tuple[float, float]:
    """Single-event appends from many threads: (events/s, events per fsync)."""
    commits_before = log.input.commits
    work = [
        [_requests(50_000_000 + t * per_thread + i, 1) for i in range(per_thread)]
        for t in range(threads)
    ]

    def run(batches: list[list[StoreRequest]]) -> None:
        for requests in batches:
            inputs.store_many(requests)

    pool = [threading.Thread(target=run, args=(w,)) for w in work]
    began = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - began
    events = threads * per_thread
    return events / elapsed, events / max(1, log.input.commits - commits_before)


def _latencies(call: Callable[[], object], n: int) -> tuple[float, float]:
    samples = []
    for _ in range(n):
        began = time.perf_counter()
        call()
        samples.append(time.perf_counter() - began)
    q = statistics.quantiles(samples, n=100)
    return q[49] * 1e3, q[98] * 1e3


def _fsync_baseline(directory: Path, record_bytes: int, n: int) -> float:
    """Bare write+fdatasync of `record_bytes` per call: the disk's own single-append rate."""
    path = directory / "baseline.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    payload = b"x" * record_bytes
    try:
        began = time.perf_counter()
        for _ in range(n):
            os.write(fd, payload)
            os.fdatasync(fd)
        return n / (time.perf_counter() - began)
    finally:
        os.close(fd)
        path.unlink()


def scratch(home: str | Path | None) -> tempfile.TemporaryDirectory[str]:
    """A directory of a benchmark's own, inside `home` (made if missing) or the system's
    temporary directory; removed afterwards."""
    if home is not None:
        Path(home).mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="mnemo-bench-", dir=home)


def run_log_bench(events: int = 20_000, home: str | None = None) -> dict[str, Any]:
    with scratch(home) as tmp:
        root = Path(tmp)
        settings = LogSettings(segment_bytes=4 << 20)  # several sealed segments, as in real use
        with EventLog(root / "log", settings) as log:
            inputs = InputLog(log, actor="bench")
            single_n = max(200, min(2_000, events // 10))
            # One append first: a process's first pays one-time imports (pyarrow looks for
            # pandas on its first array, ~0.5 s), which the batch-of-1 rate measured.
            inputs.store_many(_requests(40_000_000, 1))
            rates = {
                "batch_1": _append_rate(inputs, 1, single_n, 0),
                "batch_100": _append_rate(inputs, 100, events, 10_000_000),
                "batch_1000": _append_rate(inputs, 1000, events, 20_000_000),
            }
            concurrent, per_fsync = _concurrent_rate(log, inputs, 8, single_n // 4)
            counter = iter(range(30_000_000, 40_000_000))
            p50, p99 = _latencies(lambda: inputs.store_many(_requests(next(counter), 1)), single_n)
            total = log.input.last_position
            record_bytes = log.input.segment_paths()[-1].stat().st_size // max(1, total)
            baseline = _fsync_baseline(root, max(record_bytes, 64), single_n)

        # Reopened, so reads come from the segment files (memory-mapped), not the writer's cache.
        with EventLog(root / "log", settings) as log:
            began = time.perf_counter()
            scanned = payload_bytes = 0
            for table in log.input.scan():
                scanned += table.num_rows
                payload_bytes += pc.sum(pc.binary_length(table.column("payload"))).as_py() or 0
            scan_rate = scanned / (time.perf_counter() - began)
            began = time.perf_counter()
            decoded = sum(1 for _ in log.input.read())
            read_rate = decoded / (time.perf_counter() - began)
            began = time.perf_counter()
            report = log.verify()
            verify_rate = report.checked / (time.perf_counter() - began)
            segments = len(log.input.segment_paths())
    return {
        "appends_per_s": {k: round(v) for k, v in rates.items()},
        "concurrent_8_threads_per_s": round(concurrent),
        "events_per_fsync_8_threads": round(per_fsync, 2),
        "single_append_ms": {"p50": round(p50, 3), "p99": round(p99, 3)},
        "baseline_fdatasync_per_s": round(baseline),
        "batch_1_vs_baseline": round(rates["batch_1"] / baseline, 3),
        "scan_events_per_s": round(scan_rate),
        "segments": segments,
        "read_records_per_s": round(read_rate),
        "verify_events_per_s": round(verify_rate),
        "events": total,
        "verify_ok": report.ok,
    }


def format_log_bench(result: dict[str, Any]) -> str:
    rates = result["appends_per_s"]
    lines = [
        "log benchmark (durable appends: acknowledged after fsync)",
        f"  appends/s, batch of 1     {rates['batch_1']:>12,}"
        f"   ({result['batch_1_vs_baseline']:.2f}x bare write+fdatasync:"
        f" {result['baseline_fdatasync_per_s']:,}/s)",
        f"  appends/s, batch of 100   {rates['batch_100']:>12,}",
        f"  appends/s, batch of 1000  {rates['batch_1000']:>12,}",
        f"  appends/s, 8 threads x 1  {result['concurrent_8_threads_per_s']:>12,}"
        f"   (group commit: {result['events_per_fsync_8_threads']} events per fsync)",
        f"  single append p50 / p99   {result['single_append_ms']['p50']:>8.3f} ms"
        f" / {result['single_append_ms']['p99']:.3f} ms",
        f"  full scan (Arrow)         {result['scan_events_per_s']:>12,} events/s"
        f"   ({result['segments']} segments, payload bytes summed)",
        f"  read as records           {result['read_records_per_s']:>12,} events/s",
        f"  verify                    {result['verify_events_per_s']:>12,} events/s",
        f"  events in the log         {result['events']:>12,}   verify ok: {result['verify_ok']}",
    ]
    return "\n".join(lines)
