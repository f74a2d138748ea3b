"""Child process for the crash test: appends from several threads, printing each acked id.

An id is printed only after its append returned, i.e. after fsync: every printed id must
survive the SIGKILL the parent sends at some moment.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from mnemoflow.eventlog import EventLog, InputLog, LogSettings, StoreRequest
from mnemoflow.pipeline.api.config import LoggingSettings
from mnemoflow.pipeline.api.logsetup import configure_logging


def main(directory: str) -> None:
    configure_logging(LoggingSettings(format="json"))  # logs to stderr; stdout carries the ids
    log = EventLog(Path(directory), LogSettings(segment_bytes=16384))
    inputs = InputLog(log, actor="crash-test")
    out = threading.Lock()

    def worker(t: int) -> None:
        i = 0
        while True:
            batch = [
                StoreRequest(f"thread {t} memory {i + j}", f"ns{t}", event_id=f"t{t}-{i + j}")
                for j in range(1 + (i % 3))
            ]
            receipts = inputs.store_many(batch)
            with out:
                for r in receipts:
                    sys.stdout.write(r.event_id + "\n")
                sys.stdout.flush()
            i += len(batch)

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


if __name__ == "__main__":
    main(sys.argv[1])
