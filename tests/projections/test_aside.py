"""The fold of the actors' streams in a child process, at its edges (the rebuild through it is
tested end to end in tests/pipeline/test_projections_e2e.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from mnemoflow.eventlog import EventLog
from mnemoflow.projections.aside import AsideFold
from mnemoflow.projections.errors import ProjectionError


def test_a_child_that_dies_before_reading_its_request_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a flaky run: the request was written after the child had exited, and the
    parent raised BrokenPipeError instead of saying the child failed."""
    real = subprocess.Popen

    def exited_before_the_write(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        child = real(*args, **kwargs)
        child.wait()
        return child

    monkeypatch.setattr(sys, "executable", "/bin/false")
    monkeypatch.setattr(subprocess, "Popen", exited_before_the_write)
    path = tmp_path / "aside.duckdb"
    with EventLog(tmp_path / "log") as log:
        fold = AsideFold(log, path, [("extracted", "input")], 0, 10)
        with pytest.raises(ProjectionError, match=r"process of its own failed \(exit 1\)"):
            fold.result()
    assert not path.exists()


def test_a_child_that_cannot_start_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    with EventLog(tmp_path / "log") as log, pytest.raises(ProjectionError, match="cannot start"):
        AsideFold(log, tmp_path / "aside.duckdb", [("extracted", "input")], 0, 10)


def test_the_child_replaces_what_an_unfinished_fold_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "aside.duckdb"
    path.write_bytes(b"left by a fold that did not finish")
    # The child runs this checkout's code, whatever the caller's directory holds.
    decoy = tmp_path / "projections"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("")
    (decoy / "aside.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(tmp_path)
    with EventLog(Path("log")) as log:  # relative paths, too
        fold = AsideFold(
            log, Path("aside.duckdb"), [("extracted", "input"), ("decay", "input")], 0, 10
        )
        assert fold.result() == 0  # an empty log: nothing to fold
    con = duckdb.connect(str(path), read_only=True)  # a fresh DuckDB file, ready to merge
    assert con.execute("SELECT count(*) FROM entities").fetchone() == (0,)
    con.close()
    fold.discard()
    assert not path.exists()
