"""SIGKILL of the whole service (driver, pump, Ray and every actor) during a steady ingest:
after a restart nothing acknowledged is lost, every derived stream has exactly one
derivation per source, the projections equal a fresh rebuild, and the log verifies.
(Child processes with their own Ray: this module does not use the session's Ray.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnemoflow.eventlog import EventLog
from tests.pipeline.recovery import assert_recovered

ROOT = Path(__file__).resolve().parents[2]


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pipeline.service_check", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: Ray's processes die with it
    )


def _derived(home: Path, stream: str) -> int:
    with EventLog(home / "log", writable=False) as log:
        return log.stream(stream).last_position


@pytest.mark.timeout(600)
def test_sigkill_of_the_whole_service_mid_ingest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    child = _child("run", str(home))
    acked: dict[str, int] = {}
    assert child.stdout is not None
    deadline = time.monotonic() + 180
    try:
        for line in child.stdout:
            _, position, memory_id = line.split()
            acked[memory_id] = int(position)
            # Kill once the actors are well into it: links made, more input arriving.
            if len(acked) >= 150 and _derived(home, "linked") >= 40:
                break
            assert time.monotonic() < deadline, "the service did not get going"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(30)
        child.stdout.close()
    time.sleep(1)

    recovery = _child("recover", str(home))
    assert recovery.stdout is not None
    try:
        out, _ = recovery.communicate(timeout=400)
    finally:  # a recovery that hangs is killed, its pipe closed, before the test fails
        with contextlib.suppress(ProcessLookupError):
            os.killpg(recovery.pid, signal.SIGKILL)
        recovery.wait(30)
        recovery.stdout.close()
    assert recovery.returncode == 0, out[-2000:]
    status = json.loads(out.strip().splitlines()[-1])
    assert all(a["lag"] == 0 for a in status["actors"].values()), status
    assert status["service"]["pump_errors"] == 0, status

    assert_recovered(home, set(acked))
