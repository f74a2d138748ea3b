"""Durability: nothing acknowledged is lost, whatever the crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from mnemoflow.eventlog import EventLog, InputLog, LogSettings, StoreRequest
from mnemoflow.eventlog.schema import ENVELOPE_SCHEMA
from mnemoflow.eventlog.segments import SEGMENT_SUFFIX

ROOT = Path(__file__).resolve().parents[2]


def _kill_mid_run(directory: Path, acked_target: int) -> list[str]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.eventlog.crash_writer", str(directory)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    acked: list[str] = []
    for line in child.stdout:
        acked.append(line.strip())
        if len(acked) >= acked_target:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    # Whatever the child printed before it died was acknowledged too.
    acked += [line.strip() for line in child.stdout if line.strip()]
    child.stdout.close()
    return acked


@pytest.mark.parametrize("target", [150, 1200])
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, target: int) -> None:
    """SIGKILL during concurrent appends: every acked id is there exactly once, gapless, valid."""
    directory = tmp_path / "log"
    acked = _kill_mid_run(directory, target)
    assert len(acked) >= target
    with EventLog(directory) as log:
        records = list(log.input.read())
        ids = Counter(r.event_id for r in records)
        lost = [e for e in acked if ids[e] != 1]
        assert not lost, f"acknowledged events missing or doubled: {lost[:5]}"
        assert max(ids.values()) == 1
        assert [r.position for r in records] == list(range(1, len(records) + 1))
        assert log.verify().ok
        # The writer carries on where the chain ends.
        r = InputLog(log).store("after the crash", "ns0")
        assert r.position == len(records) + 1
        assert log.verify().ok


def _active_segment(directory: Path) -> Path:
    return sorted((directory / "streams" / "input").glob(f"*{SEGMENT_SUFFIX}"))[-1]


def test_truncated_tail_is_cut_back_to_the_last_whole_batch(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        inputs = InputLog(log)
        for i in range(10):
            inputs.store(f"memory {i}", "ns")
    segment = _active_segment(directory)
    size = segment.stat().st_size
    with segment.open("r+b") as f:
        f.truncate(size - 5)  # the last batch is now torn
    with capture_logs() as logs, EventLog(directory) as log:
        assert log.input.last_position == 9
        assert [r.position for r in log.input.read()] == list(range(1, 10))
        assert log.verify().ok
        assert InputLog(log).store("next", "ns").position == 10
        assert log.verify().ok
    cut = [e for e in logs if e["event"] == "log.torn_tail_cut"]
    assert cut and cut[0]["segment"] == str(segment)


def test_a_tail_damaged_in_place_is_cut_back_to_the_last_record_that_verifies(
    tmp_path: Path,
) -> None:
    """200 bytes zeroed inside the last batch, the file's length unchanged: its framing may
    still parse, but its content does not verify. Opening cuts it and names what it cut; the
    next store chains onto the last good record and verify passes."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        for i in range(10):
            InputLog(log).store(f"memory {i} " + "words " * 40, "ns")
        last = log.input.tail()
        assert last is not None
        head_before = list(log.input.read())[-2].hash
    segment = _active_segment(directory)
    data = bytearray(segment.read_bytes())
    start = data.rfind(last.event_id.encode())  # inside the last batch
    data[start : start + 200] = bytes(200)
    segment.write_bytes(bytes(data))
    with capture_logs() as logs, EventLog(directory) as log:
        assert log.input.last_position == 9
        assert log.input.tail().hash == head_before  # type: ignore[union-attr]
        assert log.verify().ok
        assert InputLog(log).store("next", "ns").position == 10
        assert log.verify().ok
    (cut,) = [e for e in logs if e["event"] == "log.torn_tail_cut"]
    assert cut["segment"] == str(segment) and cut["from_position"] == 10 and cut["bytes"] > 0
    with EventLog(directory) as log:
        assert log.verify().ok


def test_the_good_rows_of_a_damaged_batch_are_kept(tmp_path: Path) -> None:
    """One group commit of five events whose fourth is damaged: the first three stay."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        InputLog(log).store("before", "ns")
        InputLog(log).store_many([StoreRequest(f"memory {i}", "ns") for i in range(5)])
        fourth = [r for r in log.input.read()][4]
    segment = _active_segment(directory)
    data = bytearray(segment.read_bytes())
    offset = data.rfind(fourth.hash)
    data[offset] ^= 0xFF
    segment.write_bytes(bytes(data))
    with capture_logs() as logs, EventLog(directory) as log:
        assert [r.position for r in log.input.read()] == [1, 2, 3, 4]
        assert log.verify().ok
        assert InputLog(log).store("next", "ns").position == 5
        assert log.verify().ok
    (cut,) = [e for e in logs if e["event"] == "log.torn_tail_cut"]
    assert cut["from_position"] == 5 and "hash" in cut["reason"]


def test_opening_checks_the_tail_a_crash_can_reach_and_verify_the_rest(tmp_path: Path) -> None:
    """Of 40 single-event batches, damage in the last is cut on opening; damage in the third
    (fdatasynced long before the crash could have happened) is not recovery's to cut — a
    whole segment of small batches took seconds to check on every open — but verify names
    it."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        for i in range(40):
            InputLog(log).store(f"memory {i} " + "words " * 20, "ns")
        third, last = list(log.input.read())[2], log.input.tail()
        assert last is not None
    segment = _active_segment(directory)
    data = bytearray(segment.read_bytes())
    data[data.rfind(last.hash)] ^= 0xFF
    data[data.find(third.hash)] ^= 0xFF
    segment.write_bytes(bytes(data))
    with EventLog(directory) as log:
        assert log.input.last_position == 39  # the damaged last event cut
        report = log.verify()
        assert not report.ok and report.first_bad_position == 3


@pytest.mark.parametrize("junk", [b"\x00" * 64, b"\xff\xff\xff\xff\x10\x00", os.urandom(300)])
def test_garbage_after_the_last_batch_is_cut(tmp_path: Path, junk: bytes) -> None:
    """Bytes a crash left past the last whole batch (zeros, a half header, noise) are cut."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        for i in range(5):
            InputLog(log).store(f"memory {i}", "ns")
    segment = _active_segment(directory)
    whole = segment.stat().st_size
    with segment.open("ab") as f:
        f.write(junk)
    with EventLog(directory) as log:
        assert log.input.last_position == 5
        assert segment.stat().st_size == whole
        assert log.verify().ok


def test_segment_torn_in_its_header_is_restarted(tmp_path: Path) -> None:
    """A crash while a new segment's header was written: start that segment anew."""
    directory = tmp_path / "log"
    header = len(ENVELOPE_SCHEMA.serialize())
    with EventLog(directory, LogSettings(segment_bytes=4096)) as log:
        inputs = InputLog(log)
        while True:  # append until a seal has just started a fresh, empty segment
            inputs.store("a memory long enough to fill segments quickly " * 3, "ns")
            if _active_segment(directory).stat().st_size == header:
                break
        last = log.input.last_position
    fresh = _active_segment(directory)
    fresh.write_bytes(fresh.read_bytes()[:10])
    with EventLog(directory, LogSettings(segment_bytes=4096)) as log:
        assert log.input.last_position == last
        assert InputLog(log).store("after", "ns").position == last + 1
        assert log.verify().ok


def test_what_a_crash_left_half_written_is_swept_by_the_next_writer(tmp_path: Path) -> None:
    """A file replaced whole is written beside itself first (`name.tmp`); a crash leaves that
    behind. A leftover keyring copy holds keys an erasure must destroy, so the process that
    opens the log to write removes every such leftover, naming each; a reader removes none (it
    could be a live writer's work in progress)."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        (r,) = InputLog(log).store_many([StoreRequest("Kit's locker code is 3141.", "kit")])
    left = [
        directory / "keyring.json.tmp",
        directory / "streams" / "input" / f"00000000000000000001{SEGMENT_SUFFIX}.tmp",
        directory / "streams" / "input" / "00000000000000000001.idx.tmp",
    ]
    for path in left:
        path.write_bytes((directory / "keyring.json").read_bytes())
    with EventLog(directory, writable=False) as log:
        assert log.input.last_position == 1
    assert all(path.exists() for path in left)
    with capture_logs() as logs, EventLog(directory) as log:
        assert InputLog(log).history(r.memory_id)[0].payload["text"] == "Kit's locker code is 3141."
    assert [path for path in left if path.exists()] == []
    swept = {e["file"] for e in logs if e["event"] == "eventlog.leftover_removed"}
    assert swept == {str(path) for path in left}
