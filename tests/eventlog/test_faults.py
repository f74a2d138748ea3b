"""Faults inside the log: a failed seal, compaction or fsync never changes an append's outcome.

An append is either acknowledged and present exactly once, or not acknowledged and absent.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from mnemoflow.eventlog import EventLog, InputLog, LogSettings, StoreRequest
from mnemoflow.eventlog.errors import AppendFailed
from mnemoflow.eventlog.schema import ENVELOPE_SCHEMA
from mnemoflow.eventlog.segments import INDEX_SUFFIX, SEGMENT_SUFFIX

SMALL = LogSettings(segment_bytes=4096)


def _enospc(*_: Any, **__: Any) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


def _segments(directory: Path) -> list[Path]:
    return sorted((directory / "streams" / "input").glob(f"*{SEGMENT_SUFFIX}"))


def _store_until_sealed(inputs: InputLog, start: int) -> list[str]:
    """Store until the first segment is past the seal size: returns the acknowledged ids."""
    acked: list[str] = []
    for i in range(start, start + 60):
        acked.append(inputs.store(f"memory number {i} " + "x" * 120, "ns").event_id)
    return acked


@pytest.mark.parametrize(
    "failing",
    [
        "mnemoflow.eventlog.segments.write_atomic",  # the compacted copy and the index
        "mnemoflow.eventlog.segments.write_index",  # the index alone, after the compacted copy
        "mnemoflow.eventlog.atomic.fsync_path",  # the directory entry, after the rename
        "mnemoflow.eventlog.segments.fsync_path",  # the next segment cannot be made
    ],
)
def test_a_failed_seal_keeps_every_acknowledged_append_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    """Every append whose batch was made durable is acknowledged, even when sealing the segment
    after it fails; positions stay gapless, the chain verifies, and the seal is done later."""
    directory = tmp_path / "log"
    with EventLog(directory, SMALL) as log:
        inputs = InputLog(log)
        acked = [inputs.store("the first memory makes the namespace's key", "ns").event_id]
        with monkeypatch.context() as patch:
            patch.setattr(failing, _enospc)
            acked += _store_until_sealed(inputs, 0)
            records = list(log.input.read())
            assert [r.event_id for r in records] == acked
            assert [r.position for r in records] == list(range(1, len(acked) + 1))
            assert log.verify().ok
        # Space is back: stores go on, the put-off seal happens at the next one.
        acked += _store_until_sealed(inputs, 1000)
        assert [r.event_id for r in log.input.read()] == acked
    with EventLog(directory, SMALL) as log:  # and all of it is there after a reopen
        records = list(log.input.read())
        assert [r.event_id for r in records] == acked
        assert [r.position for r in records] == list(range(1, len(acked) + 1))
        assert log.verify().ok
    segments = _segments(directory)
    assert len(segments) >= 3
    for sealed in segments[:-1]:
        assert sealed.with_suffix(INDEX_SUFFIX).exists(), f"{sealed.name} never indexed"
    leftovers = [p.name for p in segments[0].parent.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, leftovers


def test_a_seal_cut_short_is_finished_when_the_stream_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that stops while its seal is put off leaves a full segment without an index;
    the next writer compacts and indexes it, and reads see every event once."""
    directory = tmp_path / "log"
    with EventLog(directory, SMALL) as log:
        inputs = InputLog(log)
        acked = [inputs.store("first", "ns").event_id]
        monkeypatch.setattr("mnemoflow.eventlog.segments.write_atomic", _enospc)
        acked += _store_until_sealed(inputs, 0)
    monkeypatch.undo()
    first = _segments(directory)[0]
    assert not first.with_suffix(INDEX_SUFFIX).exists()
    uncompacted = first.stat().st_size
    with EventLog(directory, SMALL) as log:
        assert [r.event_id for r in log.input.read()] == acked
        assert log.verify().ok
    assert first.with_suffix(INDEX_SUFFIX).exists()
    assert first.stat().st_size < uncompacted


class _SyncSpy:
    """Watches the log's writes and fdatasyncs by file: how far each file was written, and how
    far it was written when it was last made durable."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.written: dict[str, int] = {}
        self.durable: dict[str, int] = {}
        self._lock = threading.Lock()
        real_pwrite, real_sync = os.pwrite, os.fdatasync

        def pwrite(fd: int, data: Any, offset: int) -> int:
            n = real_pwrite(fd, data, offset)
            with self._lock:
                path = _file_of(fd)
                self.written[path] = max(self.written.get(path, 0), offset + n)
            return n

        def fdatasync(fd: int) -> None:
            path = _file_of(fd)
            with self._lock:
                upto = self.written.get(path, 0)
            real_sync(fd)
            with self._lock:
                self.durable[path] = max(self.durable.get(path, 0), upto)

        monkeypatch.setattr(os, "pwrite", pwrite)
        monkeypatch.setattr(os, "fdatasync", fdatasync)

    def assert_durable(self, segment: Path, position: int) -> None:
        """The bytes that hold `position` in the (active) segment were fdatasynced."""
        end = _batch_end(segment, position)
        durable = self.durable.get(str(segment), 0)
        assert durable >= end, (
            f"position {position} acknowledged before fdatasync ({durable} < {end})"
        )


def _file_of(fd: int) -> str:
    return str(Path(f"/proc/self/fd/{fd}").readlink())


def _batch_end(segment: Path, position: int) -> int:
    data = pa.memory_map(str(segment), "r")
    pa.ipc.read_schema(pa.ipc.read_message(data))
    while True:
        batch = pa.ipc.read_record_batch(pa.ipc.read_message(data), ENVELOPE_SCHEMA)
        if batch.column("position")[-1].as_py() >= position:
            return data.tell()


def test_no_acknowledgement_comes_before_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single appends, batches, and group commits from eight threads: each is acknowledged only
    once the bytes holding it were made durable (a SIGKILL test cannot see a missing fsync: the
    page cache outlives the process)."""
    spy = _SyncSpy(monkeypatch)
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)
        first = inputs.store("the first", "ns")
        segment = _segments(tmp_path / "log")[0]
        spy.assert_durable(segment, first.position)
        for i in range(20):
            spy.assert_durable(segment, inputs.store(f"single {i}", "ns").position)
        batch = inputs.store_many([StoreRequest(f"batch {i}", "ns") for i in range(100)])
        spy.assert_durable(segment, batch[-1].position)
        failures: list[BaseException] = []

        def appender(t: int) -> None:
            try:
                for i in range(40):
                    spy.assert_durable(segment, inputs.store(f"thread {t} {i}", "ns").position)
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=appender, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[0]
        assert log.input.commits < 1 + 20 + 1 + 8 * 40, "the threads were never group-committed"


def test_a_failed_fdatasync_is_not_acknowledged_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fdatasync fails with EIO: the append raises AppendFailed, the file is as it was, the
    next append takes the same position, and the refused event is nowhere after a reopen."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        inputs = InputLog(log)
        kept = inputs.store("kept", "ns")
        segment = _segments(directory)[0]
        size = segment.stat().st_size

        def eio(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        with monkeypatch.context() as patch:
            patch.setattr(os, "fdatasync", eio)
            with pytest.raises(AppendFailed):
                inputs.store("refused", "ns", event_id="refused-event")
        assert segment.stat().st_size == size
        after = inputs.store("after", "ns")
        assert after.position == kept.position + 1
    with EventLog(directory) as log:
        assert [r.event_id for r in log.input.read()] == [kept.event_id, after.event_id]
        assert log.input.get("refused-event") is None
        assert log.verify().ok
