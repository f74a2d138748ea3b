"""Behaviour particular to the Arrow implementation: skipping segments, group commit."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from eventlog import segments
from eventlog.stream import ArrowStream
from tests.contracts.stream_contract import draft


def _reads_of_sealed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    opened: list[Path] = []
    real = segments.read_sealed

    def counting(path: Path) -> pa.Table:
        opened.append(path)
        return real(path)

    monkeypatch.setattr("eventlog.stream.read_sealed", counting)
    return opened


def test_reads_skip_segments_that_cannot_match(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace, kind or position range present in one segment opens only that one."""
    stream = ArrowStream(tmp_path / "s", segment_bytes=4096)
    for i in range(60):
        stream.append([draft(i, namespace="common")])
    stream.append([draft(1000, namespace="rare", kind="memory.forgotten")])
    for i in range(60, 120):
        stream.append([draft(i, namespace="common")])
    stream.close()

    reopened = ArrowStream(tmp_path / "s", segment_bytes=4096)
    opened = _reads_of_sealed(monkeypatch)
    assert len(list(reopened.segment_paths())) > 10
    assert [r.event_id for r in reopened.read(namespace="rare")] == ["ev-1000"]
    assert len(opened) <= 1
    opened.clear()
    assert [r.event_id for r in reopened.read(kind="memory.forgotten")] == ["ev-1000"]
    assert len(opened) <= 1
    opened.clear()
    assert [r.position for r in reopened.read(50, 52)] == [50, 51, 52]
    assert len(opened) <= 2
    opened.clear()
    assert reopened.get("ev-100") is not None
    assert len(opened) <= 1


def test_memory_id_lookup_opens_only_segments_holding_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = ArrowStream(tmp_path / "s", segment_bytes=4096)
    for i in range(120):
        stream.append([draft(i, memory_id="needle" if i in (7, 100) else f"m{i}")])
    opened = _reads_of_sealed(monkeypatch)
    stream._tables.clear()
    assert [r.event_id for r in stream.read(memory_id="needle")] == ["ev-7", "ev-100"]
    assert len(opened) == 2


def test_concurrent_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Group commit: while one fsync runs, the others queue and go out together."""
    real = os.fdatasync

    def slow_fsync(fd: int) -> None:
        time.sleep(0.002)
        real(fd)

    monkeypatch.setattr("eventlog.segments.os.fdatasync", slow_fsync)
    stream = ArrowStream(tmp_path / "s")
    appends_per_thread, threads = 100, 8

    def worker(t: int) -> None:
        for i in range(appends_per_thread):
            stream.append([draft(t * 1000 + i, event_id=f"{t}-{i}")])

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    appends = appends_per_thread * threads
    assert stream.last_position == appends
    assert stream.commits < appends / 2, f"{stream.commits} fsyncs for {appends} appends"
    assert stream.verify().ok
