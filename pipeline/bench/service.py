"""`mnemo bench lag`: store-to-recallable lag in the service under steady ingest.

The service runs as `mnemo serve` runs it (a local Ray, the actors, the pump). One thread
stores corpus memories at a steady rate; for each, a reader measures the time from the store
returning to recall being able to see it (`recall(min_position=...)`'s wait: the memory
extracted, embedded and folded into DuckDB and FAISS).
"""

from __future__ import annotations

import queue
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.bench.corpus import corpus
from mnemoflow.pipeline.bench.log import scratch
from mnemoflow.pipeline.bench.recall import percentiles
from mnemoflow.pipeline.service.service import Service


def run_lag_bench(
    settings: Settings, *, rate: float = 50.0, seconds: float = 20.0, home: str | None = None
) -> dict[str, Any]:
    with scratch(home) as tmp:
        local = settings.model_copy(
            update={"paths": settings.paths.model_copy(update={"home": tmp})}
        )
        with Service(local) as service:
            mem = service.memory
            mem.store("warm-up", namespace="bench")  # first model call, first segment
            mem.recall("warm", "bench", 1, min_position=1)
            lags: list[float] = []
            acked: queue.Queue[tuple[int, float] | None] = queue.Queue()

            def watch() -> None:
                # Positions come in order, so one reader waiting for each in turn sees every
                # store become recallable (as a client with min_position would).
                while (item := acked.get()) is not None:
                    position, at = item
                    mem.runtime.wait_for(position, settings.query.wait_timeout)
                    lags.append(time.perf_counter() - at)

            watcher = threading.Thread(target=watch)
            watcher.start()
            began = time.perf_counter()
            when = datetime(2024, 1, 1, tzinfo=UTC)
            for i, item in enumerate(corpus(int(rate * seconds))):
                time.sleep(max(0.0, began + i / rate - time.perf_counter()))
                r = mem.store(item.text, namespace="bench", occurred_at=when + timedelta(minutes=i))
                acked.put((r.position, time.perf_counter()))
            acked.put(None)
            watcher.join()
            elapsed = time.perf_counter() - began
    return {
        "rate_per_s": rate,
        "stored": len(lags),
        "achieved_per_s": round(len(lags) / elapsed, 1),
        "store_to_recallable": percentiles(lags),
    }


def format_lag_bench(result: dict[str, Any]) -> str:
    lag = result["store_to_recallable"]
    return (
        f"store-to-recallable lag in the service, {result['stored']} stores at "
        f"{result['rate_per_s']}/s (achieved {result['achieved_per_s']}/s): "
        f"p50 {lag['p50_ms']} ms, p95 {lag['p95_ms']} ms, p99 {lag['p99_ms']} ms"
    )
