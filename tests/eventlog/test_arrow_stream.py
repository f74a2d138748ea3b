"""Behaviour particular to the Arrow implementation: skipping segments, group commit."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest

from mnemoflow.eventlog import segments
from mnemoflow.eventlog.stream import ArrowStream
from tests.contracts.stream_contract import draft


def _reads_of_sealed(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    opened: list[Path] = []
    real = segments.read_sealed

    def counting(path: Path) -> pa.Table:
        opened.append(path)
        return real(path)

    monkeypatch.setattr("mnemoflow.eventlog.stream.read_sealed", counting)
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

    monkeypatch.setattr("mnemoflow.eventlog.segments.os.fdatasync", slow_fsync)
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


def test_a_reader_follows_a_writer_across_seals(tmp_path: Path) -> None:
    """A read-only stream (another process's view) sees appends and seals on refresh()."""
    writer = ArrowStream(tmp_path / "s", segment_bytes=4096)
    reader = ArrowStream(tmp_path / "s", writable=False)
    assert reader.refresh() == 0
    for round_ in range(4):
        for i in range(15):
            writer.append([draft(round_ * 100 + i)])
        assert reader.refresh() == writer.last_position
        assert [r.event_id for r in reader.read()] == [r.event_id for r in writer.read()]
        assert reader.get(f"ev-{round_ * 100 + 3}") is not None
        assert reader.tail() == writer.tail()
    assert len(writer.segment_paths()) > 3
    assert reader.verify().ok


def test_a_reader_opened_before_anything_was_written(tmp_path: Path) -> None:
    reader = ArrowStream(tmp_path / "later", writable=False)
    writer = ArrowStream(tmp_path / "later", segment_bytes=4096)
    for i in range(40):
        writer.append([draft(i)])
    assert reader.refresh() == 40
    assert [r.position for r in reader.read(38)] == [38, 39, 40]
