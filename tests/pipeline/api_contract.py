"""What the Python API does, whether the memory is embedded (`Memory.open`) or a service
over HTTP (`Memory.connect`): one suite, run against both (see test_api.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mnemoflow.eventlog import StoreRequest
from mnemoflow.eventlog.errors import (
    EpisodeClosed,
    MemoryNotFound,
    NamespaceNotFound,
    ValidationError,
)
from mnemoflow.eventlog.schema import from_micros

WHEN = datetime(2024, 5, 1, 9, tzinfo=UTC)


class MemoryApiContract:
    """Subclasses provide an `api` fixture: a Memory or a RemoteMemory over a fresh home."""

    def test_store_then_recall_sees_it(self, api: Any) -> None:
        api.store("Alice adopted a dog named Pepper.", "alice", {"topic": "pets"}, WHEN)
        for day, text in enumerate(["Alice works at a bakery in Lyon.", "Alice swims on Sundays."]):
            later = WHEN.replace(day=2 + day)  # days apart: no conversation context
            r = api.store(text, "alice", occurred_at=later)
        hits = api.recall("What is the dog's name?", "alice", k=2, min_position=r.position)
        assert hits[0].text == "Alice adopted a dog named Pepper."
        assert hits[0].metadata == {"topic": "pets"} and hits[0].namespace == "alice"
        assert hits[0].occurred_at == WHEN and hits[0].channels
        assert hits[0].provenance[0]["stream"] == "input"

    def test_store_many_and_idempotent_event_ids(self, api: Any) -> None:
        receipts = api.store_many(
            [StoreRequest(f"fact number {i}", "n", event_id=f"src:{i}") for i in range(3)]
        )
        assert [r.position for r in receipts] == [1, 2, 3]
        again = api.store("fact number 0", "n", event_id="src:0")
        assert again == receipts[0]

    def test_update_forget_and_get(self, api: Any) -> None:
        r = api.store("Bob drinks tea.", "bob")
        api.update(r.memory_id, "Bob drinks coffee now.", {"changed": True})
        row = api.get(r.memory_id)
        assert row.text == "Bob drinks coffee now." and row.version == 2
        assert row.metadata == {"changed": True}
        other = api.store("Bob has a cat.", "bob")
        api.forget(other.memory_id, reason="wrong")
        hits = api.recall("cat", "bob", k=5, min_position=other.position + 1)
        assert other.memory_id not in {h.memory_id for h in hits}
        assert [m.memory_id for m in api.memories("bob", status="active")] == [r.memory_id]
        assert api.get("0" * 32) is None

    def test_get_shows_the_memory_not_the_projections_bookkeeping(self, api: Any) -> None:
        """A memory as a caller sees it: its metadata a dict, no row numbers, lengths or
        context text (`doc`, `length`, `prev_doc`, `context` were the projection's own)."""
        r = api.store("Ana paints on Sundays.", "ana", {"mood": "calm", "n": 2}, occurred_at=WHEN)
        row = api.get(r.memory_id)
        assert {f.name for f in dataclasses.fields(row)} == {
            "memory_id",
            "namespace",
            "text",
            "status",
            "version",
            "occurred_at",
            "recorded_at",
            "created_position",
            "text_position",
            "metadata",
        }
        assert row.metadata == {"mood": "calm", "n": 2}
        assert (row.namespace, row.status, row.version) == ("ana", "active", 1)
        assert row.created_position == row.text_position == r.position
        assert row.occurred_at == WHEN and row.recorded_at == r.recorded_at
        u = api.update(r.memory_id, "Ana paints on Saturdays.")
        api.recall("paints", "ana", k=1, min_position=u.position)
        row = api.get(r.memory_id)
        assert (row.version, row.created_position, row.text_position) == (2, r.position, u.position)
        assert row.metadata == {"mood": "calm", "n": 2}
        plain = api.store("Ana has no metadata.", "ana")
        api.recall("metadata", "ana", k=1, min_position=plain.position)
        assert api.get(plain.memory_id).metadata == {}
        assert api.memories("ana") == [api.get(r.memory_id), api.get(plain.memory_id)]

    def test_an_update_keeps_the_memory_time_unless_given_one(self, api: Any) -> None:
        r = api.store("Bob moved to Leeds.", "bob", occurred_at=WHEN)
        api.update(r.memory_id, "Bob moved to York.")
        assert api.get(r.memory_id).occurred_at == WHEN
        assert [e.occurred_at for e in api.history(r.memory_id)] == [WHEN, WHEN]
        later = WHEN.replace(month=9)
        api.update(r.memory_id, "Bob moved to Hull.", occurred_at=later)
        api.update(r.memory_id, "Bob moved to Hull, by train.")
        assert api.get(r.memory_id).occurred_at == later

    def test_date_words_are_read_on_the_writers_clock(self, api: Any) -> None:
        """23:30 on 5 January at UTC-5 (already the 6th in UTC): "yesterday" is the 4th of
        the writer's calendar, and the memory is dated, and indexed, as of the 5th."""
        late = datetime(2024, 1, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
        r = api.store("I went bouldering with Noor yesterday.", "fay", occurred_at=late)
        assert api.recall("bouldering", "fay", k=1, min_position=r.position)
        row = api.get(r.memory_id)
        assert row.occurred_at == late and row.occurred_at.utcoffset() == late.utcoffset()
        extracted = next(e for e in api.audit(r.memory_id) if e.stream == "extracted")
        (span,) = extracted.payload["times"]
        assert from_micros(span["start"]) == datetime(2024, 1, 4, tzinfo=late.tzinfo)
        assert from_micros(span["end"]) == datetime(2024, 1, 5, tzinfo=late.tzinfo)
        u = api.update(r.memory_id, "I went bouldering with Noor yesterday, twice.")
        api.recall("bouldering", "fay", k=1, min_position=u.position)
        kept = api.get(r.memory_id).occurred_at  # the update kept its writer's clock
        assert kept.utcoffset() == timedelta(hours=-5)
        plain = api.store("A note in UTC.", "fay", occurred_at=WHEN)
        api.recall("note", "fay", k=1, min_position=plain.position)
        assert api.get(plain.memory_id).occurred_at.utcoffset() == timedelta(0)

    def test_a_question_is_read_on_the_askers_clock(self, api: Any) -> None:
        """Asked at 23:30 on 5 January at UTC-5 (the 6th in UTC): "yesterday" is the 4th."""
        east = timezone(timedelta(hours=-5))
        ours = api.store(
            "I cooked a lentil stew.", "gil", occurred_at=datetime(2024, 1, 4, 12, tzinfo=east)
        )
        r = api.store(
            "I cooked a mushroom risotto.", "gil", occurred_at=datetime(2024, 1, 5, 12, tzinfo=UTC)
        )
        asked = datetime(2024, 1, 5, 23, 30, tzinfo=east)
        hits = api.recall(
            "What did I cook yesterday?", "gil", k=2, min_position=r.position, now=asked
        )
        assert hits[0].memory_id == ours.memory_id and hits[0].channels["temporal"] > 0
        assert hits[1].channels.get("temporal", 0) == 0

    def test_feedback_history_and_audit(self, api: Any) -> None:
        r = api.store("Carol likes jazz.", "carol")
        fb = api.feedback(r.memory_id, True, note="helped")
        assert fb.position == r.position + 1
        assert [e.kind for e in api.history(r.memory_id)] == ["memory.stored", "feedback.recorded"]
        api.recall("jazz", "carol", k=1, min_position=fb.position)
        trail = api.audit(r.memory_id)
        assert {"input", "extracted", "embedded"} <= {e.stream for e in trail}
        assert all(len(e.hash) == 64 for e in trail)

    def test_erase_and_verify(self, api: Any) -> None:
        r = api.store("Dan's PIN is 4242.", "dan")
        api.erase("dan")
        with pytest.raises(NamespaceNotFound):  # the name went with the keys
            api.recall("PIN", "dan", k=5)
        assert api.memories("dan") == []
        assert api.history(r.memory_id)[0].erased
        report = api.verify()
        assert report.ok and report.checked >= 2

    def test_bad_calls_are_refused_and_change_nothing(self, api: Any) -> None:
        api.store("a first memory", "eve")
        with pytest.raises(ValidationError):
            api.store("", "eve")
        with pytest.raises(ValidationError):
            api.store("x", "not a namespace!")
        with pytest.raises(ValidationError):
            api.store(b"\xff\xfe", "eve")
        with pytest.raises(ValidationError):
            api.recall("q", "eve", k=0)
        with pytest.raises(NamespaceNotFound):
            api.recall("q", "nobody")
        with pytest.raises(MemoryNotFound):
            api.update("0" * 32, "x")
        assert [m.text for m in api.memories("eve")] == ["a first memory"]

    def test_contradictions_name_both_memories_the_supersession_and_provenance(
        self, api: Any
    ) -> None:
        liked = api.store("Alice: I like coffee.", "cafe", occurred_at=WHEN)
        later = WHEN + timedelta(days=3)
        denied = api.store("Alice: I don't like coffee anymore.", "cafe", occurred_at=later)
        api.store("Alice: I walk to work.", "cafe", occurred_at=later + timedelta(days=1))
        api.recall("coffee", "cafe", min_position=denied.position)
        found = api.contradictions("cafe")
        assert len(found) == 1
        (c,) = found
        assert (c.memory.memory_id, c.contradicts.memory_id) == (
            denied.memory_id,
            liked.memory_id,
        )
        assert c.superseded == liked.memory_id  # the later claim supersedes the earlier
        streams = [(p["stream"], p["kind"]) for p in c.provenance]
        assert streams == [
            ("input", "text"),
            ("input", "text"),
            ("linked", "link"),
            ("consolidated", "decision"),
        ]
        assert [p["position"] for p in c.provenance[:2]] == [liked.position, denied.position]
        with pytest.raises(NamespaceNotFound):
            api.contradictions("nobody-here")

    def test_episodes_are_recorded_read_and_give_a_new_task_its_context(self, api: Any) -> None:
        def run(task: str, steps: list[tuple[str, str, str | None]], success: bool) -> str:
            eid = api.episodes.start(task, "agent", domain="devops", tags=["deploy"]).memory_id
            for tool, action, error in steps:
                api.episodes.step(eid, tool, action, error=error, latency_ms=12.5)
            api.episodes.complete(eid, success, result="done" if success else None)
            return str(eid)

        good = run(
            "Deploy the billing service to staging",
            [
                ("git", "pull", None),
                ("kubectl", "apply", "quota exceeded"),
                ("kubectl", "apply", None),
            ],
            True,
        )
        bad = run("Deploy the search service", [("kubectl", "apply", "image not found")], False)
        run("Write the quarterly report", [("docs", "write", None)], True)
        api.store("Staging deploys need the VPN.", "agent")

        episode = api.episodes.get(good)
        assert episode.outcome == "success" and episode.score == pytest.approx(0.9)
        assert [(s.tool, s.action, s.ok) for s in episode.steps] == [
            ("git", "pull", True),
            ("kubectl", "apply", False),
            ("kubectl", "apply", True),
        ]
        assert episode.steps[1].error == "quota exceeded" and episode.steps[0].latency_ms == 12.5
        assert [e.episode_id for e in api.episodes.list("agent")][:2] == [good, bad]

        found = api.context("deploy the payments service", "agent", k=3)
        assert [e.episode_id for e in found.episodes] == [good, bad]  # the report shares no word
        assert found.episodes[0].relevance > found.episodes[1].relevance > 0
        assert [s.action for s in found.episodes[1].steps] == ["apply"]
        assert found.memories and found.memories[0].text == "Staging deploys need the VPN."
        assert api.context("deploy", "agent", tags=["other"]).episodes == []

        with pytest.raises(EpisodeClosed):
            api.episodes.step(good, "kubectl", "delete")
        with pytest.raises(MemoryNotFound):
            api.episodes.get("0" * 32)
        with pytest.raises(ValidationError):
            api.episodes.start("", "agent")

    def test_steps_go_in_batches_checked_first_and_retried_safely(self, api: Any) -> None:
        eid = api.episodes.start("Index the archive", "batch").memory_id
        steps = [{"tool": "fs", "action": f"read shard {i}", "event_id": f"s{i}"} for i in range(5)]
        steps[2] |= {"error": "checksum mismatch", "latency_ms": 3.5}
        receipts = api.episodes.step_many(eid, steps)
        assert [r.position for r in receipts] == list(
            range(receipts[0].position, receipts[0].position + 5)
        )
        assert api.episodes.step_many(eid, steps) == receipts  # a retried batch: no new events
        episode = api.episodes.get(eid)
        assert [s.ok for s in episode.steps] == [True, True, False, True, True]
        last = receipts[-1].position
        bad = [{"tool": "fs", "action": "read"}, {"tool": "", "action": "read"}]
        with pytest.raises(ValidationError, match="step 2"):
            api.episodes.step_many(eid, bad)
        with pytest.raises(ValidationError, match=r"step 1|steps\.0\.tool"):
            api.episodes.step_many(eid, [{"action": "read"}])
        api.episodes.complete(eid, True)
        with pytest.raises(EpisodeClosed):
            api.episodes.step_many(eid, [{"tool": "fs", "action": "read more"}])
        assert len(api.episodes.get(eid).steps) == 5 and last == receipts[-1].position
