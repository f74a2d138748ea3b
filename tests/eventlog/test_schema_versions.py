"""Event schema versions: every event records the version its payload was written in; a log
written by an older mnemoflow (the fixture in tests/fixtures/log-v1, written when versions
were introduced and never rewritten) opens, verifies, rebuilds and recalls with this one; an
older payload is read through its kind's upcasters; a newer one is refused by name."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog import payloads as payload_registry
from mnemoflow.eventlog.errors import LogError, NamespaceNotFound
from mnemoflow.eventlog.payloads import MemoryStored, register_payload
from mnemoflow.eventlog.schema import MEMORY_STORED, Draft

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "log-v1"


@pytest.fixture
def old_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(FIXTURE, home)
    return home


def test_a_log_written_by_the_first_versioned_mnemoflow_opens_verifies_and_recalls(
    old_home: Path,
) -> None:
    with Memory.open(old_home) as mem:
        report = mem.verify()
        assert report.ok and not any(s.lost for s in report.streams)
        assert {e.kind for e in mem.events()} >= {
            "memory.stored",
            "memory.updated",
            "memory.forgotten",
            "feedback.recorded",
            "subject.erased",
        }
        assert {r.schema_version for r in mem.log.input.read()} == {1}
        assert mem.rebuild() > 0
        hits = mem.recall("What is Rosa's dog called?", "rosa", k=3)
        assert "Biscuit" in hits[0].text and hits[0].channels["semantic"] > 0
        moved = mem.recall("Which city does Rosa drive trams in?", "rosa", k=1)[0]
        assert moved.text == "Rosa: I drive trams in Porto now."
        assert mem.get(moved.memory_id).version == 2  # type: ignore[union-attr]
        assert [r.text for r in mem.memories("tom", status="forgotten")] == [
            "Tom: my bank PIN is 4321."
        ]
        assert mem.namespaces() == ["rosa", "tom"]
        with pytest.raises(NamespaceNotFound):
            mem.recall("diary", "ulla")
        # derived events (vectors, facts, links) of every stream open too
        for stream in mem.log.stream_names():
            for record in mem.log.stream(stream).read():
                mem.log.open_payload(record)


class MemoryStoredV2(MemoryStored):
    language: str


@pytest.fixture
def stored_at_v2() -> Iterator[list[dict[str, Any]]]:
    """`memory.stored` as if its schema had moved on to version 2 (a new required field),
    with the upcaster from version 1 that such a change would come with."""
    seen: list[dict[str, Any]] = []

    def v1_to_v2(fields: dict[str, Any]) -> dict[str, Any]:
        seen.append(fields)
        return {**fields, "language": "und"}

    before = payload_registry._REGISTRY[MEMORY_STORED]
    register_payload(MEMORY_STORED, MemoryStoredV2, version=2, upcasters={1: v1_to_v2})
    try:
        yield seen
    finally:
        payload_registry._REGISTRY[MEMORY_STORED] = before


def test_an_older_payload_is_read_through_its_upcaster(
    old_home: Path, stored_at_v2: list[dict[str, Any]]
) -> None:
    with EventLog(old_home / "log") as log:
        stored = [r for r in log.input.read() if r.kind == MEMORY_STORED]
        opened = [log.open_payload(r) for r in stored]
        live = [p for p in opened if p is not None]  # ulla's is erased
        assert len(live) == len(stored) - 1 == len(stored_at_v2)
        assert all(isinstance(p, MemoryStoredV2) and p.language == "und" for p in live)
        assert {p.text for p in live} >= {"Rosa: I adopted a greyhound called Biscuit."}
        # a new event is written in the version its kind is at now
        key_id, sealed = log.seal(
            MEMORY_STORED,
            stored[0].namespace,
            "new-1",
            MemoryStoredV2(text="Rosa: hello.", language="pt"),
        )
        receipt = log.input.append(
            [
                Draft(
                    "new-1",
                    MEMORY_STORED,
                    stored[0].namespace,
                    sealed,
                    "test",
                    "m-new",
                    key_id=key_id,
                )
            ]
        )[0]
        record = next(iter(log.input.read(receipt.position, receipt.position)))
        assert record.schema_version == 2
        assert log.open_payload(record) == MemoryStoredV2(text="Rosa: hello.", language="pt")
        assert log.verify().ok


def test_a_newer_payload_is_refused_by_name_and_upcasters_must_be_whole(
    old_home: Path,
) -> None:
    with EventLog(old_home / "log") as log:
        first = next(r for r in log.input.read() if r.kind == MEMORY_STORED)
        receipt = log.input.append(
            [
                Draft(
                    "from-the-future",
                    MEMORY_STORED,
                    first.namespace,
                    first.payload,
                    "test",
                    "m-future",
                    key_id=first.key_id,
                    schema_version=3,
                )
            ]
        )[0]
        future = next(iter(log.input.read(receipt.position, receipt.position)))
        with pytest.raises(LogError, match="schema version 3, newer than this mnemoflow"):
            log.open_payload(future)
    with pytest.raises(ValueError, match="needs upcasters from 1 to 2"):
        register_payload("test.kind", MemoryStored, version=3, upcasters={1: dict})
