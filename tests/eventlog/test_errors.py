"""Foreign exceptions are translated at the boundary; each translation is pinned here."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mnemoflow.eventlog import EventLog, InputLog, LogSettings
from mnemoflow.eventlog.errors import (
    AppendFailed,
    CorruptSegment,
    KeyringError,
    LogError,
    LogLocked,
    MnemoError,
    NamespaceNotFound,
)
from mnemoflow.eventlog.segments import SEGMENT_SUFFIX
from mnemoflow.eventlog.stream import ArrowStream


def test_hierarchy_has_one_base() -> None:
    for error in (AppendFailed, CorruptSegment, KeyringError, LogLocked, NamespaceNotFound):
        assert issubclass(error, LogError) and issubclass(error, MnemoError)


def test_disk_full_fails_the_append_cleanly_and_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError from the write becomes AppendFailed; nothing half-written stays behind."""
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)
        inputs.store("before", "ns")
        segment = sorted((tmp_path / "log" / "streams" / "input").glob("*.arrow"))[-1]
        size = segment.stat().st_size
        real_pwrite = os.pwrite

        def full_disk(fd: int, data: bytes, offset: int) -> int:
            real_pwrite(fd, bytes(data)[: len(data) // 2], offset)  # a partial write, then ENOSPC
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("mnemoflow.eventlog.segments.os.pwrite", full_disk)
        with pytest.raises(AppendFailed, match="No space left"):
            inputs.store("during", "ns")
        assert segment.stat().st_size == size
        assert log.input.last_position == 1
        monkeypatch.setattr("mnemoflow.eventlog.segments.os.pwrite", real_pwrite)
        assert inputs.store("after", "ns").position == 2
        assert log.verify().ok
    with EventLog(tmp_path / "log") as log:
        assert [r.position for r in log.input.read()] == [1, 2]


def test_failed_fsync_is_not_acknowledged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)

        def failing(fd: int) -> None:
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr("mnemoflow.eventlog.segments.os.fdatasync", failing)
        with pytest.raises(AppendFailed, match="Input/output error"):
            inputs.store("x", "ns")
        assert log.input.last_position == 0


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path / "log"), pytest.raises(LogLocked, match=f"pid {os.getpid()}"):
        EventLog(tmp_path / "log")


def test_second_stream_writer_is_refused(tmp_path: Path) -> None:
    stream = ArrowStream(tmp_path / "s")
    with pytest.raises(LogLocked):
        ArrowStream(tmp_path / "s")
    stream.close()
    ArrowStream(tmp_path / "s").close()  # free again once closed


def test_foreign_file_as_segment_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "log" / "streams" / "input"
    directory.mkdir(parents=True)
    import pyarrow as pa

    other = pa.schema([("x", pa.int64())])
    (directory / f"{1:020d}{SEGMENT_SUFFIX}").write_bytes(other.serialize().to_pybytes())
    with pytest.raises(CorruptSegment, match="schema is not the event envelope") as info:
        EventLog(tmp_path / "log").input  # noqa: B018
    assert info.value.path.name == f"{1:020d}{SEGMENT_SUFFIX}"


def test_gap_between_segments_is_named(tmp_path: Path) -> None:
    with EventLog(tmp_path / "log", LogSettings(segment_bytes=4096)) as log:
        for i in range(30):
            InputLog(log).store(f"memory {i} " * 5, "ns")
    segments = sorted((tmp_path / "log" / "streams" / "input").glob("*.arrow"))
    segments[1].unlink()
    with pytest.raises(CorruptSegment, match="expected"):
        EventLog(tmp_path / "log").input  # noqa: B018


def test_malformed_keyring_is_named(tmp_path: Path) -> None:
    with EventLog(tmp_path / "log") as log:
        InputLog(log).store("x", "ns")
    (tmp_path / "log" / "keyring.json").write_text("{not json")
    with pytest.raises(KeyringError, match=r"keyring\.json"):
        EventLog(tmp_path / "log")
