"""Faults under the projections (a full disk): a Memory that cannot close cleanly still lets
go of the log, and an erasure whose rewrite failed is finished later."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.errors import LogLocked
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.errors import ErasureUnfinished
from mnemoflow.projections.errors import ProjectionError


def _enospc(*_: Any, **__: Any) -> Any:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_close_that_fails_for_want_of_space_releases_the_log(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(home=home)
    mem = Memory.open(settings=settings)
    stored = mem.store("Alice moved to Lyon in May", namespace="alice")
    assert mem.recall("where does Alice live?", namespace="alice", k=1)  # projections exist
    mem.store("Bob plays the cello", namespace="alice")
    with monkeypatch.context() as patch:
        patch.setattr("numpy.savez", _enospc)  # the FAISS snapshot written at close
        with pytest.raises(OSError, match="No space left"):
            mem.close()
    try:
        with Memory.open(settings=settings) as again:
            hits = again.recall("where does Alice live?", namespace="alice", k=1)
            assert hits[0].memory_id == stored.memory_id
            assert again.verify().ok
    except LogLocked as exc:  # pragma: no cover - the failure this test exists for
        pytest.fail(f"the failed close kept the log's lock: {exc}")
    leftovers = [p.name for p in (home / "projections").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers, f"half-written snapshot left behind: {leftovers}"


def test_an_erasure_whose_rewrite_failed_is_rewritten_at_the_next_catch_up(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The projection file is rewritten after an erasure so no erased row survives in a free
    page. When that rewrite fails (a full disk), erase says the erasure is unfinished, and the
    rewrite is owed: the next catch-up, in this process or the next, does it."""
    settings = load_settings(home=home)
    secret = "Zebramark the password is hunter2"
    with Memory.open(settings=settings) as mem:
        mem.store(secret, namespace="gone")
        mem.store("Bob plays the cello", namespace="kept")
        mem.sync()
        gone = mem.log.keyring.namespace_id("gone")
        assert gone is not None
        mem.runtime.projector.duck.checkpoint()  # the text is in the file's pages now
        with monkeypatch.context() as patch:
            patch.setattr(
                "mnemoflow.projections.duck.DuckProjection.compact", _raise_projection_error
            )
            with pytest.raises(ErasureUnfinished, match="next catch-up"):
                mem.erase("gone")
        assert mem.runtime.projector.duck.compaction_owed()
        assert not mem.runtime.engine.recall("password", gone, 3)  # the rows are dropped
    with Memory.open(settings=settings) as mem:  # the next process's first catch-up rewrites
        assert mem.runtime.projector.duck.compaction_owed()
        assert mem.recall("cello", namespace="kept", k=1)
        assert not mem.runtime.projector.duck.compaction_owed()
    for path in (home / "projections").rglob("*"):
        assert not path.is_file() or b"Zebramark" not in path.read_bytes(), path


def _raise_projection_error(*_: Any, **__: Any) -> Any:
    raise ProjectionError("cannot compact: No space left on device")


def test_projection_files_a_crash_left_are_removed_at_open(home: Path) -> None:
    """A compaction's copy or an aside fold's database cut short by a crash may hold rows of
    a namespace erased since, and nothing rewrites them unless the same work runs again:
    the process that takes the projections (at its first read) removes them first."""
    with Memory.open(home=home) as mem:
        mem.store("Lyra keeps the spare key under the mat.", namespace="lyra")
        mem.sync()
    projections = home / "projections"
    left = [
        projections / "memories.compact",
        projections / "memories.compact.wal",
        projections / "derived.aside.duckdb",
        projections / "derived.aside.duckdb.wal",
    ]
    for path in left:
        path.write_bytes(b"Lyra keeps the spare key under the mat.")
    with Memory.open(home=home) as mem:
        assert mem.recall("spare key", namespace="lyra", k=1)
        assert [path for path in left if path.exists()] == []
