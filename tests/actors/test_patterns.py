"""The patterns actor on its own: what it learns from episodes (sequences, decision points,
error recoveries), that its events depend on the input's order alone (not on batches, not on a
restart), that a namespace's state goes with its erasure, and how errors are normalised."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from mnemoflow.actors.follower import Derived, Opened
from mnemoflow.actors.patterns import (
    PatternsActor,
    PatternSettings,
    normalise_error,
    overlap,
    pattern_anchor,
    wilson,
)
from mnemoflow.eventlog.derived import PatternLearned
from mnemoflow.eventlog.episodes import EpisodeCompleted, EpisodeStarted, EpisodeStep
from mnemoflow.eventlog.payloads import Payload, SubjectErased
from mnemoflow.eventlog.schema import (
    EPISODE_COMPLETED,
    EPISODE_STARTED,
    EPISODE_STEP,
    SUBJECT_ERASED,
    Record,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
RECIPE = [("git", "pull"), ("docker", "build"), ("pytest", "run"), ("kubectl", "apply")]


class Log:
    """Input events as the runner hands them over, opened."""

    def __init__(self) -> None:
        self.events: list[Opened] = []

    def add(self, kind: str, namespace: str, memory_id: str, payload: Payload) -> None:
        position = len(self.events) + 1
        record = Record(
            position, f"e{position}", kind, 1, namespace, memory_id, AT, AT, "t", None, None,
            b"", b"", b"",
        )  # fmt: skip
        self.events.append(Opened(record, payload))

    def episode(
        self,
        episode_id: str,
        task: str,
        steps: Sequence[tuple[str, str] | tuple[str, str, str]],
        success: bool,
        namespace: str = "ns",
    ) -> None:
        self.add(EPISODE_STARTED, namespace, episode_id, EpisodeStarted(task=task))
        for tool, action, *error in steps:
            failed = {"ok": False, "error": error[0]} if error else {}
            self.add(
                EPISODE_STEP, namespace, episode_id, EpisodeStep(tool=tool, action=action, **failed)
            )
        done = EpisodeCompleted(
            success=success, score=1.0 * success, duration_ms=1, steps=len(steps), failed_steps=0
        )
        self.add(EPISODE_COMPLETED, namespace, episode_id, done)


def _deploys(log: Log, n: int, start: int = 0) -> None:
    """Deploys: the recipe; every third a forced apply that fails instead of the tests; every
    fourth a build that times out, the cache pruned, the build again."""
    for i in range(start, start + n):
        steps: list[tuple[str, str] | tuple[str, str, str]] = [RECIPE[0]]
        if i % 4 == 0:
            steps += [("docker", "build", f"timed out after {30 + i}s"), ("cache", "prune")]
        steps.append(RECIPE[1])
        if i % 3 == 0:
            log.episode(f"d{i}", f"deploy the service {i}", [*steps, ("kubectl", "force")], False)
        else:
            log.episode(f"d{i}", f"deploy the service {i}", [*steps, *RECIPE[2:]], True)


def _latest(derived: Sequence[Derived]) -> dict[str, PatternLearned]:
    out = {}
    for d in derived:
        assert isinstance(d.payload, PatternLearned)
        out[d.payload.pattern_id] = d.payload
    return out


def test_it_learns_the_recipe_the_decision_and_the_recovery() -> None:
    log = Log()
    _deploys(log, 24)
    patterns = _latest(PatternsActor().process(log.events))
    by_kind = {p.kind: p for p in patterns.values() if p.active}
    sequence = by_kind["tool_sequence"]
    assert sequence.steps == ["git:pull", "docker:build", "pytest:run", "kubectl:apply"]
    assert (sequence.support, sequence.success_rate) == (16, 1.0)
    assert sequence.family == "d0" and sequence.task == "deploy the service 0"
    assert sequence.episodes[0] == "d23" and len(sequence.episodes) == 16
    decision = by_kind["decision_point"]
    assert decision.point == "docker:build" and decision.steps == ["docker:build", "pytest:run"]
    assert [(b.step, b.support, b.success_rate) for b in decision.branches] == [
        ("pytest:run", 16, 1.0),
        ("kubectl:force", 8, 0.0),
    ]
    recovery = by_kind["error_recovery"]
    assert recovery.error == "timed out after <n>s" and recovery.failed_step == "docker:build"
    assert recovery.steps == ["docker:build", "cache:prune", "docker:build"]
    assert (recovery.support, recovery.success_rate) == (6, 0.6667)  # d0 and d12 failed
    assert pattern_anchor(recovery.pattern_id) == "d0"
    assert {pattern_anchor(p) for p in patterns} == {"d0"}


def test_a_kind_of_task_stays_apart_from_another_and_from_one_offs() -> None:
    log = Log()
    _deploys(log, 12)
    for i in range(6):
        trip = [("search", "flights"), ("search", "hotels"), ("booking", "reserve")]
        log.episode(f"t{i}", f"book a trip to kyoto {i}", trip, True)
    log.episode("x", "water the plants", [("git", "pull")], True)
    families = {p.family for p in _latest(PatternsActor().process(log.events)).values()}
    assert families == {"d0", "t0"}


def test_the_events_do_not_depend_on_batches_or_on_a_restart() -> None:
    log = Log()
    _deploys(log, 30)
    whole = PatternsActor().process(log.events)
    fed = PatternsActor()
    assert [d for e in log.events for d in fed.process([e])] == whole  # one event a batch
    cut = 200  # a restart: the state folded back from the prefix, then go on
    restarted = PatternsActor()
    restarted.observe([e for e in log.events[:cut] if e.record.kind in restarted.observes])
    after = restarted.process(log.events[cut:])
    assert after == [d for d in whole if d.source_position > cut]


def test_a_pattern_that_stops_holding_is_logged_once_more_inactive() -> None:
    log = Log()
    for i in range(3):  # a decision at the start: two ways, one fails
        log.episode(f"a{i}", "tidy the repo", [("git", "status"), ("git", "clean")], True)
        log.episode(f"b{i}", "tidy the repo", [("rm", "-rf"), ("git", "clean")], False)
    for i in range(6):
        log.episode(f"c{i}", "tidy the repo", [("git", "status"), ("git", "clean")], True)
    actor = PatternsActor(PatternSettings(window=6))  # the failures leave the window
    derived = actor.process(log.events)
    decisions = [d.payload for d in derived if getattr(d.payload, "kind", "") == "decision_point"]
    assert isinstance(decisions[-1], PatternLearned) and not decisions[-1].active
    assert sum(not p.active for p in decisions if isinstance(p, PatternLearned)) == 1


def test_an_erasure_drops_the_namespaces_state() -> None:
    log = Log()
    _deploys(log, 8)
    actor = PatternsActor()
    actor.process(log.events)
    assert "ns" in actor._spaces
    erased = Log()
    erased.add(SUBJECT_ERASED, "ns", "ns", SubjectErased(namespace="ns", key_ids=[]))
    actor.process(erased.events)
    assert actor._spaces == {}  # no task word, step or error of it is left in this process


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("Timeout after 30s talking to 10.0.0.7", "timeout after <n>s talking to <n>"),
        ("No module named 'requests'", "no module named <q>"),
        ("open /var/lib/app/x.db: permission denied", "open <path>: permission denied"),
        ("object 3f9a2c1b7e5d4f60 not found", "object <id> not found"),
        ("  HTTP   502\n bad gateway ", "http <n> bad gateway"),
    ],
)
def test_errors_are_normalised_to_one_key(message: str, key: str) -> None:
    assert normalise_error(message) == key


def test_the_measures() -> None:
    assert overlap(["a", "b"], {"a": 2, "b": 1}, size=2) == 0.75
    assert overlap([], {"a": 1}) == 0.0
    low, high = wilson(20, 20, 1.64)
    assert 0.88 < low < high == pytest.approx(1.0)
    assert wilson(10, 0, 1.64)[0] == pytest.approx(0.0, abs=1e-12)
