"""A real full filesystem: the data directory on a small tmpfs that fills while memories are
stored, updated, erased and the directory is closed. Whichever write site meets the full disk
(the active segment, a seal and its compaction, an `.idx`, the keyring, DuckDB, the FAISS
snapshot, the API keys file), every acknowledged store survives; once space returns (the
filesystem is grown in place) the same process opens the directory again, stores succeed,
`verify` passes and nothing half-written is left.

Mounting needs root (CAP_SYS_ADMIN); where it is refused the test is skipped, saying so. The
injected-fault variants of each write site run everywhere (tests/eventlog/test_faults.py,
tests/pipeline/test_memory_faults.py)."""

from __future__ import annotations

import errno
import subprocess
import traceback
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import LogSettings, StoreRequest
from mnemoflow.eventlog.errors import MnemoError, NamespaceNotFound
from mnemoflow.pipeline.api.config import Settings, load_settings

BALLAST = 16 * 1024
MARKER = "Zebramark"  # in the erased texts alone
REFUSALS = 30  # the full disk met this many times, at whichever write sites


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of the test's own, unmounted afterwards."""
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _grow(disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)


def _settings(home: Path) -> Settings:
    return load_settings(home=home).model_copy(update={"log": LogSettings(segment_bytes=16384)})


def _fill(disk: Path) -> list[Path]:
    """Ballast files over all the free space: freeing one lets a few writes through."""
    ballast: list[Path] = []
    while True:
        path = disk / f"ballast-{len(ballast)}"
        try:
            path.write_bytes(b"\0" * BALLAST)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
            path.unlink(missing_ok=True)
            return ballast
        ballast.append(path)


def _site(exc: BaseException) -> str:
    """Where the disk said no: the innermost frame of our code in the chain of causes."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" not in f.filename
    ]
    last = (frames or traceback.extract_tb(exc.__traceback__))[-1]
    return f"{Path(last.filename).name}:{last.name}"


def _text(i: int) -> str:
    return (
        f"Note {i}: Dana met Priya at the climbing gym on a Tuesday; they talked of route {i}. " * 3
    )


@pytest.mark.timeout(900)  # ~4 minutes on 2 shared cores
def test_a_full_disk_loses_nothing_acknowledged_and_leaves_nothing_half_written(disk: Path) -> None:
    home = disk / "home"
    settings = _settings(home)
    with Memory.open(settings=settings) as mem:  # the model, DuckDB and FAISS set up with room
        first = mem.store(_text(0), namespace="dana")
        mem.sync()
    ballast = _fill(disk)
    assert len(ballast) > 20

    acked: dict[str, str] = {first.memory_id: _text(0)}
    temporary: set[str] = set()  # namespaces erased as the test goes
    refused: Counter[str] = Counter()
    mem = Memory.open(settings=settings)
    i = 1
    while ballast and sum(refused.values()) < REFUSALS:
        try:
            if i % 11 == 0:
                batch = [StoreRequest(_text(i * 100 + j), "dana") for j in range(5)]
                for r, request in zip(mem.store_many(batch), batch, strict=True):
                    acked[r.memory_id] = str(request.text)
            elif i % 5 == 0:
                temporary.add(f"temp-{i}")
                mem.store(f"{MARKER} {i}: " + _text(i), namespace=f"temp-{i}")
                mem.erase(f"temp-{i}")  # the keyring, a compaction of every stream
            else:
                r = mem.store(_text(i), namespace="dana")
                acked[r.memory_id] = _text(i)
            if i % 7 == 0:
                mem.sync()  # actors derive and the projections fold: DuckDB, FAISS
        except (OSError, MnemoError) as exc:
            refused[_site(exc)] += 1
            ballast.pop().unlink()  # a little space comes back; go on
        i += 1
    try:
        mem.close()  # the FAISS snapshot and the last seal, on a disk still nearly full
    except (OSError, MnemoError) as exc:
        refused[_site(exc)] += 1
    assert sum(refused.values()) >= 10, refused

    _grow(disk)
    with Memory.open(settings=settings) as mem:  # the same process: the lock was let go
        assert mem.verify().ok
        mem.sync()
        for memory_id, text in acked.items():
            row = mem.get(memory_id)
            assert row is not None and row.text == text, memory_id
        # An erase the full disk cut short after the keys went was finished on opening; one
        # it refused changed nothing (the name lives on), and succeeds now.
        for namespace in temporary & set(mem.namespaces()):
            mem.erase(namespace)
        for namespace in temporary:
            with pytest.raises(NamespaceNotFound):
                mem.recall("the climbing gym", namespace=namespace, k=5)
        r = mem.store("Dana's new project is a bouldering guide", namespace="dana")
        mem.sync()
        hits = mem.recall("what is Dana's new project?", namespace="dana", k=3)
        assert r.memory_id in [h.memory_id for h in hits]
        assert mem.verify().ok
    leftovers = [p for p in home.rglob("*") if p.name.endswith((".tmp", ".compact"))]
    assert not leftovers, f"half-written files left behind: {leftovers}"
    holding = [p for p in home.rglob("*") if p.is_file() and MARKER.encode() in p.read_bytes()]
    assert not holding, f"erased text survives in {holding}"
    print(dict(refused))
