"""The Python API contract of the issue: Memory.open, store, update, forget, feedback, …"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.errors import LogLocked


def test_the_documented_round_trip(home: Path) -> None:
    with Memory.open(home=home) as mem:
        r = mem.store(
            "text", namespace="alice", metadata={"k": "v"}, occurred_at=None, event_id=None
        )
        assert (r.position, len(r.event_id), len(r.memory_id or "")) == (1, 32, 32)
        mem.update(r.memory_id, "new text")
        mem.feedback(r.memory_id, useful=True)
        mem.forget(r.memory_id)
        report = mem.verify()
        assert report.ok and report.checked == 4 and report.first_bad_position is None
        events = mem.history(r.memory_id)
        assert [e.kind for e in events] == [
            "memory.stored",
            "memory.updated",
            "feedback.recorded",
            "memory.forgotten",
        ]
        assert [e.text for e in events[:2]] == ["text", "new text"]
        assert events[0].metadata == {"k": "v"}
        assert all(e.actor == "api" for e in events)
        mem.erase(namespace="alice")
        assert mem.verify().ok


def test_occurred_at_is_kept_and_defaults_to_now(mem: Memory) -> None:
    when = datetime(2023, 5, 8, 13, 56, tzinfo=UTC)
    given = mem.store("conversation turn", namespace="n", occurred_at=when)
    assert mem.history(given.memory_id)[0].occurred_at == when
    iso = mem.store("turn", namespace="n", occurred_at="2023-05-08T13:56:00+00:00")
    assert mem.history(iso.memory_id)[0].occurred_at == when
    default = mem.store("now", namespace="n")
    event = mem.history(default.memory_id)[0]
    assert event.occurred_at is not None
    assert abs((event.occurred_at - event.recorded_at).total_seconds()) < 5


def test_event_id_makes_store_idempotent(mem: Memory) -> None:
    first = mem.store("once", namespace="n", event_id="source:row-1")
    assert mem.store("once", namespace="n", event_id="source:row-1") == first
    assert mem.log.input.last_position == 1


def test_data_survives_reopening(home: Path) -> None:
    with Memory.open(home=home) as mem:
        r = mem.store("persisted", namespace="n")
    with Memory.open(home=home) as mem:
        assert mem.history(r.memory_id)[0].text == "persisted"
        assert mem.store("more", namespace="n").position == 2


def test_one_writer_per_home(home: Path) -> None:
    with Memory.open(home=home), pytest.raises(LogLocked):
        Memory.open(home=home)


def test_read_only_open_beside_a_writer(home: Path) -> None:
    with Memory.open(home=home) as writer:
        r = writer.store("visible", namespace="n")
        with Memory.open(home=home, read_only=True) as reader:
            assert reader.history(r.memory_id)[0].text == "visible"
            assert reader.verify().ok


def test_events_filter_by_namespace_and_kind(mem: Memory) -> None:
    a = mem.store("a1", namespace="a")
    mem.store("b1", namespace="b")
    mem.update(a.memory_id, "a2")
    assert [e.text for e in mem.events(namespace="a")] == ["a1", "a2"]
    assert [e.text for e in mem.events(kind="memory.stored")] == ["a1", "b1"]
    assert [e.position for e in mem.events(start=2)] == [2, 3]
    assert mem.namespaces() == ["a", "b"]
