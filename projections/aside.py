"""Folding the actors' streams, and folding some of them in a process of their own.

A rebuild folds every stream of the log, and all of it in Python on one thread: at 10^5
memories its main thread, not the CPU, bounds it. The streams of the extractor, linker,
consolidator and decay fold into tables of their own (entities, times, facets, edges,
consolidation, schedule) that nothing else writes, so when those tables start empty they can
be folded in a child process, into a DuckDB file of its own, while this process folds the input
and the embeddings; the child's tables are then copied in, in one transaction (`DuckProjection
.merge`). The child reads the same log and the same keyring, so it opens exactly what the
fold here would: an erasure in the log destroyed its key before it was appended.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.eventlog.settings import LogSettings
from mnemoflow.projections.duck import DuckProjection, wal_path
from mnemoflow.projections.errors import ProjectionError
from mnemoflow.projections.heap import gc_paused
from mnemoflow.projections.memstate import keeping_doc_ids

Streams = Sequence[tuple[str, str]]  # (stream, its upstream), upstream first


def fold_stream(
    event_log: EventLog,
    stream: str,
    start: int,
    upstream_stop: int,
    batch_size: int,
    apply: Callable[[list[Opened]], None],
) -> tuple[int, int]:
    """Apply an actor's stream from `start`, batch by batch, as far as it was derived from
    upstream positions up to `upstream_stop`; return (events applied, the stream's last
    position applied)."""
    source = event_log.stream(stream)
    source.refresh()  # another process (a Ray actor) may be its writer
    applied = 0
    while start <= source.last_position:
        records = list(source.read(start, start + batch_size - 1))
        # As of a point: only what was derived from the upstream seen by then.
        inside = [
            r for r in records if r.causation is None or r.causation.position <= upstream_stop
        ]
        if inside:
            apply(event_log.opened(inside))
        applied += len(inside)
        if len(inside) < len(records):
            return applied, inside[-1].position if inside else start - 1
        start = records[-1].position + 1
    return applied, start - 1


def fold_derived(
    event_log: EventLog, duck: DuckProjection, streams: Streams, input_stop: int, batch_size: int
) -> int:
    """Fold actors' streams that write only derived tables (not the embedded one) into
    `duck`; return the events applied."""
    stops = {INPUT_STREAM: input_stop}
    applied = 0
    for stream, upstream in streams:
        done, stops[stream] = fold_stream(
            event_log,
            stream,
            duck.applied(stream) + 1,
            stops[upstream],
            batch_size,
            functools.partial(duck.apply_derived, stream),
        )
        applied += done
    return applied


class AsideFold:
    """`fold_derived` in a child process (`python -m projections.aside`), into a fresh file.

    The child folds `BATCHES_OF` of the caller's batches at a time: its file is read by
    nothing until the merge, and a 10^5 rebuild's child spends ~12% less time in 18
    transactions than in 69 (each commits, and deletes the rows its memories had), for
    ~50 MB more at its peak.
    """

    BATCHES_OF = 4

    def __init__(
        self, event_log: EventLog, path: Path, streams: Streams, input_stop: int, batch_size: int
    ) -> None:
        self.path = path
        self.streams = tuple(streams)
        self.names = [s for s, _ in self.streams]
        _remove(path)  # what a fold that did not finish left
        request = {
            "log": str(event_log.directory.resolve()),
            "log_settings": event_log.settings.model_dump(mode="json"),
            "path": str(path.resolve()),
            "streams": [list(s) for s in self.streams],
            "input_stop": input_stop,
            "batch_size": batch_size * self.BATCHES_OF,
        }
        # Its output goes to a file: a pipe nobody reads until the end could fill and stall
        # it. The file lives until `result` or `cancel`, past this method.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mnemoflow.projections.aside"],
                stdin=subprocess.PIPE,
                stdout=self._output,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            self._output.close()
            raise ProjectionError(
                f"cannot start a process to fold {', '.join(self.names)}: {exc}"
            ) from exc
        assert self._process.stdin is not None
        # A child that died at once (a broken install) closed its end: `result` says why.
        with contextlib.suppress(BrokenPipeError), self._process.stdin:
            self._process.stdin.write(json.dumps(request).encode())

    def running(self) -> bool:
        return self._process.poll() is None

    def result(self) -> int:
        """Wait for the child; the events it applied. Its file is then ready to merge."""
        code = self._process.wait()
        self._output.seek(0)
        lines = self._output.read().decode(errors="replace").strip().splitlines()
        self._output.close()
        if code != 0 or not lines:
            _remove(self.path)
            raise ProjectionError(
                f"folding {', '.join(self.names)} in a process of its own "
                f"failed (exit {code}): " + (" | ".join(lines[-5:]) or "no output")
            )
        return int(json.loads(lines[-1])["applied"])

    def cancel(self) -> None:
        """Stop the child (an error on this side) and remove what it wrote."""
        with contextlib.suppress(OSError):
            self._process.kill()
        with contextlib.suppress(subprocess.SubprocessError):
            self._process.wait(timeout=30)
        self._output.close()
        _remove(self.path)

    def discard(self) -> None:
        """The merged file is not needed any more."""
        _remove(self.path)


def _remove(path: Path) -> None:
    for p in (path, wal_path(path)):
        p.unlink(missing_ok=True)


def _main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    event_log = EventLog(
        Path(request["log"]),
        LogSettings.model_validate(request["log_settings"]),
        writable=False,
    )
    duck = DuckProjection(Path(request["path"]))
    try:
        with gc_paused(), keeping_doc_ids(), duck.bulk():
            applied = fold_derived(
                event_log,
                duck,
                [tuple(s) for s in request["streams"]],
                request["input_stop"],
                request["batch_size"],
            )
    finally:
        duck.close()
        event_log.close()
    print(json.dumps({"applied": applied}))  # the last line: what the parent reads


if __name__ == "__main__":
    _main()
