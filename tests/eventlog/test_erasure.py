"""Erasure: after erase, the plaintext is in no file under the home, and the log verifies."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog, InputLog, Receipt
from mnemoflow.eventlog.errors import MemoryGone, NamespaceNotFound
from mnemoflow.pipeline.api.apikeys import KeyStore

SECRET_TEXT = "Zanzibar-7731 is where Alice keeps her spare key"
SECRET_META = "passport-X99182"
OTHER_TEXT = "Bob likes Quokka-5521 sandwiches"


def _files_containing(root: Path, needle: str) -> list[Path]:
    raw = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and raw in p.read_bytes()]


def test_erase_leaves_no_plaintext_on_disk(home: Path) -> None:
    with Memory.open(home=home) as mem:
        r = mem.store(SECRET_TEXT, namespace="alice", metadata={"doc": SECRET_META})
        mem.update(r.memory_id, SECRET_TEXT + " (updated)")
        mem.feedback(r.memory_id, useful=True, note=SECRET_META)
        mem.store(OTHER_TEXT, namespace="bob")
        receipt = mem.erase("alice")
        assert mem.verify().ok
        history = mem.history(r.memory_id)
        assert all(e.erased and e.text is None for e in history)
        assert [e.kind for e in mem.events(kind="subject.erased")] == ["subject.erased"]
        assert receipt.position == mem.log.input.last_position
        with pytest.raises(MemoryGone):
            mem.update(r.memory_id, "anything")
        bob = [e.text for e in mem.events(namespace="bob")]
        assert bob == [OTHER_TEXT]
    assert _files_containing(home, SECRET_TEXT[:14]) == []
    assert _files_containing(home, SECRET_META) == []
    with Memory.open(home=home, read_only=True) as mem:
        assert mem.verify().ok


def test_plaintext_never_reaches_disk_before_erasure_either(home: Path) -> None:
    """Text and metadata are encrypted at rest from the start."""
    with Memory.open(home=home) as mem:
        mem.store(SECRET_TEXT, namespace="alice", metadata={"doc": SECRET_META})
    assert _files_containing(home, SECRET_TEXT[:14]) == []
    assert _files_containing(home, SECRET_META) == []


def test_an_erased_namespace_name_is_not_kept(mem: Memory) -> None:
    """The name goes with the keys: a second erase finds no such namespace, and the log
    records the erasure by the namespace's opaque id."""
    mem.store("x", namespace="alice")
    first = mem.erase("alice")
    with pytest.raises(NamespaceNotFound, match="alice"):
        mem.erase("alice")
    assert "alice" not in mem.namespaces()
    (erased,) = mem.events(kind="subject.erased")
    assert erased.position == first.position and erased.namespace.startswith("~")
    assert erased.payload == {"namespace": erased.namespace, "key_ids": [erased.namespace + "#1"]}


def test_an_erased_namespace_name_leaves_the_api_keys(home: Path) -> None:
    """A key scoped to the namespace loses it at the erase (revoked if nothing is left), and
    the key file keeps the name nowhere, nor does a copy a crashed key write left."""
    name = "alice-Quokka-project"
    home.mkdir(parents=True, exist_ok=True)
    keys = KeyStore(home / "keys.json")
    _, only = keys.create([name])
    _, both = keys.create([name, "bob"])
    _, admin = keys.create([], admin=True)
    # What a `keys create` killed between its write and its rename leaves.
    (home / "keys.json.tmp").write_bytes((home / "keys.json").read_bytes())
    with Memory.open(home=home) as mem:
        mem.store("x", namespace=name)
        mem.store("y", namespace="bob")
        mem.erase(name)
    assert _files_containing(home, name) == []
    after = {k.id: k for k in keys.list()}
    assert after[only.id].revoked and after[only.id].namespaces == ()
    assert not after[both.id].revoked and after[both.id].namespaces == ("bob",)
    assert after[admin.id] == admin


def test_erase_of_unknown_namespace_is_refused(mem: Memory) -> None:
    with pytest.raises(NamespaceNotFound, match="nobody"):
        mem.erase("nobody")
    assert mem.log.input.last_position == 0


def test_storing_after_erasure_uses_a_new_key(mem: Memory) -> None:
    old = mem.store("before", namespace="alice")
    mem.erase("alice")
    new = mem.store("after", namespace="alice")
    assert mem.history(new.memory_id)[0].text == "after"
    assert mem.history(old.memory_id)[0].erased


def test_erasure_interrupted_before_its_event_is_finished_on_open(tmp_path: Path) -> None:
    """Keys destroyed but the erase event not yet appended (a crash): reopening appends it."""
    home = tmp_path / "home"
    with Memory.open(home=home) as mem:
        mem.store(SECRET_TEXT, namespace="alice")
    with EventLog(home / "log") as log:
        alice = log.keyring.namespace_id("alice")
        log.keyring.destroy("alice")  # ... and the process dies here
        assert InputLog(log).namespaces() == set()
        assert list(log.input.read(kind="subject.erased")) == []
    with Memory.open(home=home) as mem:
        erased = list(mem.events(kind="subject.erased"))
        assert [e.payload for e in erased] == [{"namespace": alice, "key_ids": [f"{alice}#1"]}]
        assert mem.verify().ok


def test_keyring_file_is_private(mem: Memory) -> None:
    mem.store("x", namespace="alice")
    mode = (mem.home / "log" / "keyring.json").stat().st_mode & 0o777
    assert mode == 0o600


def test_a_store_racing_an_erase_is_readable_or_erased_never_silently_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stores from eight threads while the namespace is erased: every acknowledged store that
    lands after `subject.erased` is under the new key generation and opens; none lands there
    sealed with the destroyed key (acknowledged, yet unreadable for good)."""
    real_seal = EventLog.seal

    def slow_seal(self: EventLog, kind: str, *args: Any, **kwargs: Any) -> tuple[str | None, bytes]:
        sealed = real_seal(self, kind, *args, **kwargs)
        if kind == "memory.stored":
            time.sleep(0.02)  # widens the window between sealing a store and appending it
        return sealed

    monkeypatch.setattr(EventLog, "seal", slow_seal)
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)
        inputs.store("first", "ns")
        receipts: list[Receipt] = []
        started = threading.Barrier(9)

        def store(worker: int) -> None:
            started.wait()
            for i in range(25):
                receipts.append(inputs.store(f"w{worker} n{i}", "ns"))

        threads = [threading.Thread(target=store, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        started.wait()
        time.sleep(0.05)
        erased = inputs.erase("ns")
        for t in threads:
            t.join()
        assert len(receipts) == 200
        after = [r for r in receipts if r.position > erased.position]
        assert after, "some stores landed after the erasure"
        for receipt in after:
            record = log.input.get(receipt.event_id)
            assert record is not None and record.key_id != "ns#1"
            payload = log.open_payload(record)
            assert payload is not None, f"position {record.position} is acknowledged but unreadable"
        assert log.verify().ok


def _failing_writes(monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    """The keyring's next `failures` saves meet a full disk."""
    from mnemoflow.eventlog import keyring

    real = keyring.write_atomic
    left = [failures]

    def write(*args: Any, **kwargs: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise OSError(28, "No space left on device")
        real(*args, **kwargs)

    monkeypatch.setattr(keyring, "write_atomic", write)


def test_a_key_the_disk_refused_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new namespace's key that could not be saved is not kept in memory either: the next
    store makes (and saves) one, so no acknowledged event is sealed with a key the file lacks
    (it was unreadable after a restart)."""
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)
        _failing_writes(monkeypatch, 1)
        with pytest.raises(OSError):
            inputs.store("Ola's first note.", "ola")
        assert inputs.namespaces() == set()
        r = inputs.store("Ola's second note.", "ola")
    with EventLog(tmp_path / "log") as log:
        assert InputLog(log).history(r.memory_id)[0].text == "Ola's second note."


def test_an_erase_the_disk_refused_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key destruction that could not be saved leaves the namespace as it was, in this
    process as on disk; the erase, tried again with room, erases."""
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)
        r = inputs.store("Pia's note.", "pia")
        _failing_writes(monkeypatch, 1)
        with pytest.raises(OSError):
            inputs.erase("pia")
        assert inputs.namespaces() == {"pia"}
        assert inputs.history(r.memory_id)[0].text == "Pia's note."
        inputs.erase("pia")
        assert inputs.history(r.memory_id)[0].erased
