"""A Memory that cannot close cleanly (a full disk under its projections) still lets go of the
log: the same process can open the data directory again, and what was stored is there."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from eventlog.errors import LogLocked
from pipeline import Memory
from pipeline.config import load_settings


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
