"""`mnemo ingest` while `mnemo serve` runs on the data directory: the server holds the log, so
the rows go to it over HTTP, in batches its limits take (`/store_many`: 1,000 items and
`[server] max_body_bytes` a request), and its actors derive what recall needs; the command
returns once every actor and projection has caught up with the last row stored.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from mnemoflow.pipeline.api.client import RemoteMemory, ServiceError
from mnemoflow.pipeline.ingest.job import IngestReport, chunks, store_rows
from mnemoflow.pipeline.ingest.sources import guess_format, read

MAX_ITEMS = 1000  # what /store_many takes in one request


def ingest_through(
    remote: RemoteMemory,
    paths: Sequence[Path],
    namespace: str,
    fmt: str | None = None,
    *,
    batch_size: int = 2000,
    max_bytes: int = 1 << 20,
    progress: bool = True,
    stalled_after: float = 120.0,
) -> IngestReport:
    """Store every row of `paths` through the server, then wait for its actors and
    projections; `stalled_after`: seconds without progress before that wait fails."""
    began = time.perf_counter()
    rows = stored = 0
    last = _input_events(remote.stats())
    bar = tqdm(desc="stored", unit=" mem", disable=not progress, mininterval=0.5)
    for path in paths:
        requests = read(path, fmt or guess_format(path), namespace)
        for chunk in chunks(requests, min(batch_size, MAX_ITEMS), max_bytes // 2):
            receipts = store_rows(remote, chunk)
            rows += len(chunk)
            stored += sum(1 for r in receipts if r.position > last)
            last = max([last, *(r.position for r in receipts)])
            bar.update(len(chunk))
    bar.close()
    wait_caught_up(remote, last, stalled_after)
    seconds = time.perf_counter() - began
    return IngestReport(
        rows=rows,
        stored=stored,
        seconds=round(seconds, 2),
        memories_per_s=round(stored / seconds if seconds else 0.0, 1),
    )


def _input_events(stats: dict[str, Any]) -> int:
    return int(stats["streams"].get("input", {}).get("events", 0))


def wait_caught_up(remote: RemoteMemory, position: int, stalled_after: float) -> None:
    """Until the projections hold the input up to `position` and nothing lags."""
    seen, since = None, time.monotonic()
    while True:
        stats = remote.stats()
        applied = min(p["applied"].get("input", 0) for p in stats["projections"].values())
        lags = [
            *(a.get("lag", 0) for a in stats["actors"].values()),
            *(lag for p in stats["projections"].values() for lag in p["lag"].values()),
        ]
        if applied >= position and not any(lags):
            return
        now = (applied, sum(lags))
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > stalled_after:
            raise ServiceError(
                f"the server stopped catching up: input applied to {applied} of {position}, "
                f"{sum(lags)} events behind, unchanged for {stalled_after:.0f} s"
            )
        time.sleep(0.2)
