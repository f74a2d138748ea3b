"""Episodes in the input stream: started, stepped, completed; refused when they cannot be
(a step after completion, an unknown id, a memory's id), appending nothing; retried calls
safe; sealed and erased with their namespace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mnemoflow.eventlog import EventLog, InputLog
from mnemoflow.eventlog.episodes import EpisodeCompleted, EpisodeLog, EpisodeStarted
from mnemoflow.eventlog.errors import (
    EpisodeClosed,
    MemoryGone,
    MemoryNotFound,
    ValidationError,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def episodes(event_log: EventLog, inputs: InputLog) -> EpisodeLog:
    return EpisodeLog(inputs, event_log)


def test_an_episode_is_started_stepped_and_completed(
    episodes: EpisodeLog, event_log: EventLog
) -> None:
    started = episodes.start(
        "Deploy the billing service", "ops", domain="devops", tags=["deploy", "k8s"], occurred_at=T0
    )
    eid = started.memory_id
    assert eid is not None
    episodes.step(
        eid, "kubectl", "apply", latency_ms=120, tokens=0, occurred_at=T0 + timedelta(seconds=5)
    )
    episodes.step(eid, "kubectl", "rollout status", error="timed out waiting for rollout")
    episodes.step(eid, "kubectl", "rollout restart")
    done = episodes.complete(eid, True, result="deployed", occurred_at=T0 + timedelta(minutes=2))
    episode = episodes.events(eid)
    assert isinstance(episode.started, EpisodeStarted) and episode.started.domain == "devops"
    assert [s.action for _, s in episode.steps if s] == [
        "apply",
        "rollout status",
        "rollout restart",
    ]
    assert [s.ok for _, s in episode.steps if s] == [True, False, True]
    completed = episode.completed
    assert isinstance(completed, EpisodeCompleted)
    assert completed.score == pytest.approx(0.9)  # a success with one failed step
    assert not completed.score_given and completed.steps == 3 and completed.failed_steps == 1
    assert completed.duration_ms == pytest.approx(120_000)
    assert done.position == event_log.input.last_position
    # sealed like a memory's words: the task is not in the log in clear
    raw = b"".join(r.payload for r in event_log.input.read())
    assert b"billing" not in raw and b"kubectl" not in raw


def test_what_cannot_be_done_is_refused_and_appends_nothing(
    episodes: EpisodeLog, inputs: InputLog, event_log: EventLog
) -> None:
    eid = episodes.start("Write a report", "ana").memory_id
    assert eid is not None
    memory = inputs.store("Ana likes short reports.", "ana").memory_id
    episodes.complete(eid, False, error="ran out of time")
    last = event_log.input.last_position
    with pytest.raises(EpisodeClosed):
        episodes.step(eid, "editor", "type")
    with pytest.raises(EpisodeClosed):
        episodes.complete(eid, True)
    with pytest.raises(MemoryNotFound):
        episodes.step("f" * 32, "editor", "type")
    with pytest.raises(ValidationError, match="not what this changes"):
        episodes.step(memory, "editor", "type")  # a memory is no episode ...
    with pytest.raises(ValidationError, match="not what this changes"):
        inputs.update(eid, "new text")  # ... nor an episode a memory
    with pytest.raises(ValidationError):
        episodes.step(eid, "", "type")
    with pytest.raises(ValidationError):
        episodes.start("", "ana")
    with pytest.raises(ValidationError, match="score"):
        episodes.complete(eid, True, score=1.5)
    with pytest.raises(ValidationError, match="tags"):
        episodes.start("x", "ana", tags="not-a-list")  # type: ignore[arg-type]
    assert event_log.input.last_position == last
    assert episodes.events(eid).completed.score == 0.0  # type: ignore[union-attr]


def test_retries_are_safe_and_erasure_takes_episodes(
    episodes: EpisodeLog, inputs: InputLog
) -> None:
    first = episodes.start("Plan a trip", "bo", event_id="task-1")
    assert episodes.start("Plan a trip", "bo", event_id="task-1") == first
    eid = first.memory_id
    assert eid is not None
    step = episodes.step(eid, "search", "flights", event_id="s-1")
    assert episodes.step(eid, "search", "flights", event_id="s-1") == step
    done = episodes.complete(eid, True, score=0.7, event_id="c-1")
    assert episodes.complete(eid, True, score=0.7, event_id="c-1") == done  # a retry, not a 2nd
    inputs.erase("bo")
    gone = episodes.events(eid)
    assert gone.erased and gone.started is None and all(s is None for _, s in gone.steps)
    with pytest.raises(MemoryGone):
        episodes.step(eid, "search", "hotels")
