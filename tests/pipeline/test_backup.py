"""Backup and restore: a backup taken while stores go on holds every store acknowledged
before it began and restores into a log that verifies; a sealed backup follows the live
log's erasures; a damaged or unfinished backup is refused and leaves nothing behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import Receipt
from mnemoflow.eventlog.backup import MANIFEST, BackupError
from mnemoflow.eventlog.errors import NamespaceNotFound
from mnemoflow.pipeline.api.backup import backup, restore
from mnemoflow.pipeline.api.config import Settings, load_settings
from tests.conftest import SMALL_SEGMENTS


def _settings(home: Path) -> Settings:
    # small segments: the stores go on sealing segments while the backup copies them
    return load_settings(home=home).model_copy(update={"log": SMALL_SEGMENTS})


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Memory]:
    with Memory.open(settings=_settings(tmp_path / "live")) as mem:
        yield mem


def test_a_backup_under_stores_holds_every_store_acknowledged_before_it(
    live: Memory, tmp_path: Path
) -> None:
    for i in range(40):
        live.store(f"Note {i}: the heron came back to pond {i}.", f"ns{i % 3}")
    acknowledged: list[Receipt] = []
    stop = threading.Event()

    def keep_storing() -> None:
        i = 0
        while not stop.is_set():
            acknowledged.append(live.store(f"Later note {i} about otters.", f"ns{i % 3}"))
            i += 1

    writer = threading.Thread(target=keep_storing)
    writer.start()
    try:
        while len(acknowledged) < 30:
            threading.Event().wait(0.01)
        before = list(acknowledged)  # acknowledged before the backup began
        report = backup(live.settings, tmp_path / "backup")
        while len(acknowledged) < len(before) + 30:  # stores went on during and after it
            threading.Event().wait(0.01)
    finally:
        stop.set()
        writer.join()
    assert report.files > 10 and not report.sealed
    segments = list((live.home / "log/streams/input").glob("*.arrow"))
    assert len(segments) > 3  # it copied a stream being sealed as it went

    restored = restore(tmp_path / "backup", _settings(tmp_path / "restored"))
    assert restored.verified > 0 and restored.namespaces == 3 and restored.erased_since == 0
    with Memory.open(settings=_settings(tmp_path / "restored")) as mem:
        verified = mem.verify()
        assert verified.ok and not any(s.lost for s in verified.streams)  # no head ahead
        held = {r.memory_id for ns in ("ns0", "ns1", "ns2") for r in mem.memories(ns, limit=1000)}
        assert {r.memory_id for r in before} <= held
        assert restored.events["input"] >= 40 + len(before)
        hits = mem.recall("Where did the heron come back to?", "ns1", k=3)
        assert hits and "heron" in hits[0].text


def test_a_restore_recalls_what_the_live_log_recalled(live: Memory, tmp_path: Path) -> None:
    kept = live.store("Maya's daughter is called Ines and loves chess.", "maya").memory_id
    other = live.store("Maya moved to Ghent last spring.", "maya").memory_id
    live.update(other, "Maya moved to Antwerp last spring.")
    live.feedback(kept, True)
    expected = [h.memory_id for h in live.recall("Who is Ines?", "maya")]
    backup(live.settings, tmp_path / "b")
    restore(tmp_path / "b", _settings(tmp_path / "r"))
    with Memory.open(settings=_settings(tmp_path / "r")) as mem:
        assert [h.memory_id for h in mem.recall("Who is Ines?", "maya")] == expected
        assert [e.kind for e in mem.history(other)] == [e.kind for e in live.history(other)]
        assert mem.get(other).text == "Maya moved to Antwerp last spring."  # type: ignore[union-attr]


def test_a_sealed_backup_follows_an_erasure_in_the_live_log(live: Memory, tmp_path: Path) -> None:
    gone = live.store("Zoe's passport number is X1234567.", "zoe").memory_id
    stays = live.store("Yan collects old maps.", "yan").memory_id
    backup(live.settings, tmp_path / "plain")
    backup(live.settings, tmp_path / "sealed", sealed=True)
    sealed_bytes = b"".join(p.read_bytes() for p in (tmp_path / "sealed").rglob("*") if p.is_file())
    assert b"zoe" not in sealed_bytes and b"yan" not in sealed_bytes  # no name in clear
    live.erase("zoe")

    with pytest.raises(BackupError, match="--unseal-with"):
        restore(tmp_path / "sealed", _settings(tmp_path / "nope"))
    assert not (tmp_path / "nope").exists()
    report = restore(tmp_path / "sealed", _settings(tmp_path / "r"), unseal_with=live.home)
    assert report.erased_since == 1 and report.namespaces == 1
    with Memory.open(settings=_settings(tmp_path / "r")) as mem:
        assert mem.namespaces() == ["yan"]
        assert all(e.erased for e in mem.history(gone))
        assert mem.history(stays)[0].text == "Yan collects old maps."
        assert [e.kind for e in mem.events(kind="subject.erased")] == ["subject.erased"]
        with pytest.raises(NamespaceNotFound):
            mem.recall("passport", "zoe")
        assert mem.verify().ok

    # A plain backup keeps what it held: the live erase cannot reach its copy of the keys.
    restore(tmp_path / "plain", _settings(tmp_path / "p"))
    with Memory.open(settings=_settings(tmp_path / "p")) as mem:
        assert mem.history(gone)[0].text == "Zoe's passport number is X1234567."


def test_a_damaged_or_unfinished_backup_is_refused(live: Memory, tmp_path: Path) -> None:
    live.store("Ana plays the oud.", "ana")
    backup(live.settings, tmp_path / "b")
    with pytest.raises(BackupError, match="not an empty directory"):
        backup(live.settings, tmp_path / "b")
    segment = next((tmp_path / "b/log/streams/input").glob("*.arrow"))
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    with pytest.raises(BackupError, match=rf"{segment.name} differs from the manifest"):
        restore(tmp_path / "b", _settings(tmp_path / "r"))
    assert not (tmp_path / "r").exists()
    (tmp_path / "b" / MANIFEST).unlink()
    with pytest.raises(BackupError, match="unfinished"):
        restore(tmp_path / "b", _settings(tmp_path / "r"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    backup(live.settings, tmp_path / "c")
    with pytest.raises(BackupError, match="not an empty directory"):
        restore(tmp_path / "c", _settings(tmp_path / "full"))
    assert (tmp_path / "full" / "something").exists()  # what was there is untouched
