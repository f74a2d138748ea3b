"""A child process for the service crash test.

`run HOME`: start the service (its own local Ray) and store memories one by one, printing
`ACK <position> <memory_id>` once each store has returned; runs until killed. Stores are
paced to the actors (at most `BACKLOG` input events ahead of the slowest), so the work a
recovery must finish is the same on a fast machine and a slow one.
`recover HOME`: start the service again, wait until every actor and projection has caught
up, print the service status as JSON, stop.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.bench.corpus import corpus
from mnemoflow.pipeline.service.service import Service

BACKLOG = 400


def run(home: Path) -> None:
    service = Service(load_settings(home=home)).start()
    when = datetime(2024, 1, 1, tzinfo=UTC)
    for i, item in enumerate(corpus(100_000)):
        r = service.memory.store(
            item.text, namespace=f"user-{i % 3}", occurred_at=when + timedelta(minutes=i)
        )
        print(f"ACK {r.position} {r.memory_id}", flush=True)
        time.sleep(0.005)
        while i % 25 == 0 and _lag(service) > BACKLOG:
            time.sleep(0.2)


def _lag(service: Service) -> int:
    return max(a["lag"] for a in service.runner.status().values())


def recover(home: Path) -> None:
    with Service(load_settings(home=home)) as service:
        deadline = time.monotonic() + 240
        calm = 0  # caught up on three checks in a row: statuses are read while the pump runs
        while time.monotonic() < deadline and calm < 3:
            status = service.status()
            caught_up = all(a["lag"] == 0 for a in status["actors"].values()) and all(
                lag == 0 for lag in status["projections"]["duckdb"]["lag"].values()
            )
            calm = calm + 1 if caught_up else 0
            time.sleep(0.2)
        print(json.dumps(service.status(), default=str), flush=True)


if __name__ == "__main__":
    {"run": run, "recover": recover}[sys.argv[1]](Path(sys.argv[2]))
