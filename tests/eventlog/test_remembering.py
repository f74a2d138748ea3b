"""`EventLog.remembering`: inside the block an event is opened once, and what it returns is
what opening it from the log would."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnemoflow.eventlog import EventLog, InputLog
from mnemoflow.eventlog.errors import KeyringError
from mnemoflow.eventlog.keyring import Keyring
from mnemoflow.eventlog.payloads import MemoryStored


@pytest.fixture
def log(tmp_path: Path) -> EventLog:
    event_log = EventLog(tmp_path / "log")
    inputs = InputLog(event_log)
    for i in range(5):
        inputs.store(f"memory {i}", "alice" if i % 2 else "bob")
    return event_log


def _count_decryptions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = Keyring.open

    def counted(self: Keyring, key_id: str, sealed: bytes, aad: bytes) -> bytes | None:
        calls.append(key_id)
        return real(self, key_id, sealed, aad)

    monkeypatch.setattr(Keyring, "open", counted)
    return calls


def test_inside_the_block_each_event_is_opened_once(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = list(log.input.read(1, 5))
    decrypted = _count_decryptions(monkeypatch)
    outside = log.opened(records)
    assert len(decrypted) == 5
    with log.remembering():
        first = log.opened(records)
        again = log.opened(list(log.input.read(1, 5)))  # new Record objects, same events
    assert len(decrypted) == 10
    assert [o.payload for o in again] == [o.payload for o in first] == [o.payload for o in outside]
    assert all(a.payload is f.payload for a, f in zip(again, first, strict=True))
    assert isinstance(first[0].payload, MemoryStored) and first[0].payload.text == "memory 0"
    log.opened(records)  # the block has ended: nothing is kept
    assert len(decrypted) == 15


def test_nested_blocks_keep_until_the_last_one_ends(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = next(iter(log.input.read(1, 1)))
    decrypted = _count_decryptions(monkeypatch)
    with log.remembering():
        with log.remembering():
            log.open_payload(record)
        log.open_payload(record)  # still kept: the outer block runs
        assert len(decrypted) == 1
    log.open_payload(record)
    assert len(decrypted) == 2


def test_an_erased_namespace_opens_as_none_even_when_kept(log: EventLog) -> None:
    records = list(log.input.read(1, 5))
    with log.remembering():
        before = log.opened(records)
        assert all(o.payload is not None for o in before)
        alice, bob = (log.keyring.namespace_id(name) for name in ("alice", "bob"))
        InputLog(log).erase("alice")
        after = log.opened(records)
    erased = [o.record.namespace == alice for o in after]
    assert [o.payload is None for o in after] == erased and any(erased)
    assert [o.payload for o in after if o.record.namespace == bob] == [
        o.payload for o in before if o.record.namespace == bob
    ]


def test_what_is_kept_is_keyed_by_the_stored_bytes_too(log: EventLog) -> None:
    """A record claiming a kept event's id with other bytes is opened, not looked up: here
    its ciphertext fails authentication, as it would without the block."""
    record = next(iter(log.input.read(1, 1)))
    forged = record._replace(payload=record.payload[:-1] + bytes([record.payload[-1] ^ 1]))
    with log.remembering():
        log.open_payload(record)
        with pytest.raises(KeyringError, match="fails authentication"):
            log.open_payload(forged)


def test_only_the_last_keep_events_are_kept(log: EventLog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EventLog, "KEEP", 2)
    records = list(log.input.read(1, 3))
    decrypted = _count_decryptions(monkeypatch)
    with log.remembering():
        log.opened(records)  # keeps the 2nd and 3rd
        log.opened(records[1:])
        assert len(decrypted) == 3
        log.opened(records[:1])  # the 1st was dropped: opened again
        assert len(decrypted) == 4


def test_what_is_appended_inside_the_block_is_opened_without_decrypting(
    log: EventLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The payload sealed for an append is kept: the actors and projections that open the new
    event next get it as it was sealed, equal to what opening it from the log gives."""
    decrypted = _count_decryptions(monkeypatch)
    with log.remembering():
        InputLog(log).store("stored inside", "alice")
        InputLog(log).store("and another", "bob")
        inside = log.opened(list(log.input.read(6, 7)))
    assert decrypted == []
    outside = log.opened(list(log.input.read(6, 7)))
    assert len(decrypted) == 2
    assert [o.payload for o in inside] == [o.payload for o in outside]
    assert [p.text for p in (o.payload for o in inside) if isinstance(p, MemoryStored)] == [
        "stored inside",
        "and another",
    ]
    # Sealed but appended with other bytes (the id was taken): nothing kept matches it.
    with log.remembering():
        log.seal("memory.stored", "alice", "some-id", MemoryStored(text="never appended"))
        assert log.opened(list(log.input.read(6, 6)))[0].payload == outside[0].payload
    assert len(decrypted) == 3
