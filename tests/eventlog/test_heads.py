"""Signed heads anchor the chain: cutting a stream's last events, or rewriting its history and
re-hashing everything after, verified before; now each is caught and named, a loss found on
opening stays recorded, and heads kept elsewhere catch even a re-signed rewrite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from structlog.testing import capture_logs

from mnemoflow.eventlog import EventLog, InputLog
from mnemoflow.eventlog.heads import HEAD_FILE, KEY_FILE
from mnemoflow.eventlog.segments import SEGMENT_SUFFIX
from tests.pipeline.test_serve import mnemo


def _log(directory: Path, n: int, word: str = "memory") -> list[int]:
    """n stores, one batch each; returns each batch's end offset in the active segment."""
    ends = []
    with EventLog(directory) as log:
        for i in range(n):
            InputLog(log).store(f"{word} {i}", "ns")
            ends.append(_segment(directory).stat().st_size)
    return ends


def _segment(directory: Path) -> Path:
    return sorted((directory / "streams" / "input").glob(f"*{SEGMENT_SUFFIX}"))[-1]


def test_cutting_the_last_events_is_caught_and_then_kept_as_a_named_loss(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    ends = _log(directory, 10)
    with _segment(directory).open("r+b") as f:
        f.truncate(ends[7])  # whole batches: the chain of 1-8 is intact
    report = EventLog(directory, writable=False).verify()
    assert not report.ok and report.stream == "input" and report.segment == HEAD_FILE
    assert report.first_bad_position == 9
    assert "events 9-10 were cut" in (report.reason or "")
    # Opening to write records the loss in the signed head and goes on from position 8.
    with capture_logs() as logs, EventLog(directory) as log:
        assert log.input.last_position == 8
        assert InputLog(log).store("after", "ns").position == 9
        report = log.verify()
    (mismatch,) = [e for e in logs if e["event"] == "log.head_mismatch"]
    assert (mismatch["first"], mismatch["last"]) == (9, 10)
    assert report.ok
    (stream,) = [s for s in report.streams if s.stream == "input"]
    ((first, last, why),) = [(x.first, x.last, x.reason) for x in stream.lost]
    assert (first, last) == (9, 10) and "before its signed head" in why


def test_a_rewritten_and_rehashed_history_is_caught(tmp_path: Path) -> None:
    """Another chain of the same length, valid from genesis, put in place of the segments."""
    directory, forged = tmp_path / "log", tmp_path / "forged"
    _log(directory, 10)
    _log(forged, 10, word="forged")
    with EventLog(directory, writable=False) as log:
        kept = log.heads()  # what `mnemo verify --heads` prints, kept elsewhere
    assert kept["input"]["position"] == 10
    streams = directory / "streams" / "input"
    for path in streams.glob(f"*{SEGMENT_SUFFIX}"):
        path.unlink()
    for path in (forged / "streams" / "input").glob(f"*{SEGMENT_SUFFIX}"):
        shutil.copy(path, streams / path.name)
    report = EventLog(directory, writable=False).verify()
    assert not report.ok and report.first_bad_position == 10
    assert "rewritten" in (report.reason or "")
    # Re-signed with the forger's own key and head: verify passes, the kept heads do not.
    shutil.copy(forged / KEY_FILE, directory / KEY_FILE)
    shutil.copy(forged / "streams" / "input" / HEAD_FILE, directory / "streams" / "input")
    with EventLog(directory, writable=False) as log:
        assert log.verify().ok
        (problem,) = log.check_anchor(kept)
    assert "position 10's hash differs" in problem


def test_a_head_edited_without_the_key_fails_verify(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    _log(directory, 3)
    head = directory / "streams" / "input" / HEAD_FILE
    data = head.read_bytes()
    for slot in (0, 4096):
        doc = json.loads(data[slot : slot + 4096].rstrip(b" "))
        doc["position"] = 1  # as if positions 2-3 had never been
        data = data[:slot] + json.dumps(doc).encode().ljust(4096) + data[slot + 4096 :]
    head.write_bytes(data)
    report = EventLog(directory, writable=False).verify()
    assert not report.ok and "signature" in (report.reason or "")
    # A deleted head is missed too, where the log signs its heads.
    head.unlink()
    report = EventLog(directory, writable=False).verify()
    assert not report.ok and "head is missing" in (report.reason or "")


def test_a_torn_head_slot_leaves_the_other(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    _log(directory, 5)
    head = directory / "streams" / "input" / HEAD_FILE
    data = bytearray(head.read_bytes())
    data[4096 + 10 : 4096 + 40] = bytes(30)  # the slot written last (seq is odd after 5)
    head.write_bytes(bytes(data))
    assert EventLog(directory, writable=False).verify().ok  # the older slot: a lagging head
    with EventLog(directory) as log:
        assert InputLog(log).store("next", "ns").position == 6
        assert log.verify().ok


def test_the_cli_prints_heads_and_checks_the_log_against_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert mnemo(home, "store", "Ana likes figs.", "--ns", "ana").returncode == 0
    printed = mnemo(home, "verify", "--heads")
    assert printed.returncode == 0, printed.stderr
    heads = json.loads(printed.stdout)
    assert heads["input"]["position"] == 1 and len(heads["input"]["hash"]) == 64
    kept = tmp_path / "heads.json"
    kept.write_text(printed.stdout)
    ok = mnemo(home, "verify", "--anchor", str(kept))
    assert ok.returncode == 0 and ok.stdout.startswith("ok:"), ok.stdout + ok.stderr
    heads["input"]["hash"] = "00" * 32
    kept.write_text(json.dumps(heads))
    bad = mnemo(home, "verify", "--anchor", str(kept))
    assert bad.returncode == 1 and "input: position 1's hash differs" in bad.stdout
