"""Decay: FSRS-style memory strength from reviews, and lifecycle zones from it.

A memory is first "reviewed" when it is stored (grade good); feedback is a review too —
useful is "good" (3), not useful is "again" (1). After each review the actor logs the memory's
stability S (days until recall probability falls to 90%) and difficulty D, computed with the
FSRS-4.5 update rules and default weights, from event times only, so a replay computes the
same schedule. Retrievability at any later moment is R(t) = (1 + F·t/S)^-0.5; the query reads
it at the query's time and places the memory in a zone (active, warm, cold, archived).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.follower import Derived, Lookups, Opened
from mnemoflow.eventlog.derived import MemoryScheduled
from mnemoflow.eventlog.payloads import FeedbackRecorded
from mnemoflow.eventlog.schema import (
    DECAY_STREAM,
    FEEDBACK_RECORDED,
    INPUT_STREAM,
    MEMORY_SCHEDULED,
    MEMORY_STORED,
    to_micros,
)

# FSRS-4.5 default weights (open-spaced-repetition/fsrs4anki).
W = (
    0.4872, 1.4003, 3.7145, 13.8206, 5.1618, 1.2298, 0.8975, 0.031, 1.6474, 0.1367,
    1.0461, 2.1072, 0.0793, 0.3246, 1.587, 0.2272, 2.8755,
)  # fmt: skip
DECAY = -0.5
FACTOR = 19 / 81  # R(S) = 0.9 with these
AGAIN, HARD, GOOD, EASY = 1, 2, 3, 4
MICROS_PER_DAY = 86_400 * 1_000_000
ZONES = ("active", "warm", "cold", "archived")


class DecaySettings(BaseModel):
    """The ``[decay]`` section: where the zones begin, by retrievability."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    active_above: float = Field(0.9, gt=0, le=1)
    warm_above: float = Field(0.6, gt=0, le=1)
    cold_above: float = Field(0.3, ge=0, le=1)


@dataclass(frozen=True, slots=True)
class Schedule:
    stability: float
    difficulty: float
    reviewed_at: int  # micros
    reps: int = 1
    lapses: int = 0


def retrievability(elapsed_days: float, stability: float) -> float:
    return float((1 + FACTOR * max(elapsed_days, 0.0) / stability) ** DECAY)


def zone(r: float, settings: DecaySettings) -> str:
    if r >= settings.active_above:
        return "active"
    if r >= settings.warm_above:
        return "warm"
    if r >= settings.cold_above:
        return "cold"
    return "archived"


def _clamp_d(d: float) -> float:
    return min(10.0, max(1.0, d))


def first(grade: int, at: int) -> Schedule:
    return Schedule(W[grade - 1], _clamp_d(W[4] - (grade - 3) * W[5]), at)


def review(s: Schedule, grade: int, at: int) -> Schedule:
    """The FSRS-4.5 step: new difficulty (mean-reverting), then new stability."""
    elapsed = max(at - s.reviewed_at, 0) / MICROS_PER_DAY
    r = retrievability(elapsed, s.stability)
    d0 = W[4]  # D0(good) = w4
    d = _clamp_d(W[7] * d0 + (1 - W[7]) * (s.difficulty - W[6] * (grade - 3)))
    if grade == AGAIN:
        stability = (
            W[11]
            * s.difficulty ** -W[12]
            * ((s.stability + 1) ** W[13] - 1)
            * math.exp(W[14] * (1 - r))
        )
        return Schedule(min(stability, s.stability), d, at, s.reps + 1, s.lapses + 1)
    bonus = (W[15] if grade == HARD else 1.0) * (W[16] if grade == EASY else 1.0)
    growth = math.exp(W[8]) * (11 - s.difficulty) * s.stability ** -W[9]
    growth *= math.exp(W[10] * (1 - r)) - 1
    return Schedule(s.stability * (1 + growth * bonus), d, at, s.reps + 1, s.lapses)


class DecayActor:
    """Keeps no schedules in memory: a memory's current schedule is its newest event in the
    decay stream, read back when feedback on it arrives. Feedback is rare next to stores, so
    the actor needs neither memory per memory nor a replay before its first step."""

    name = "decay"
    upstream = INPUT_STREAM
    output = DECAY_STREAM

    def __init__(self, history: Lookups) -> None:
        self.history = history

    def process(self, batch: Sequence[Opened]) -> list[Derived]:
        out = []
        made: dict[str, Schedule] = {}  # this batch's schedules, not yet in the stream
        for event in batch:
            r = event.record
            if r.memory_id is None or event.payload is None:
                continue
            at = to_micros(_moment(r.occurred_at, r.recorded_at))
            if r.kind == MEMORY_STORED:
                schedule, grade = first(GOOD, at), GOOD
            elif r.kind == FEEDBACK_RECORDED:
                before = made.get(r.memory_id) or self._scheduled(r.memory_id)
                if before is None:
                    continue
                assert isinstance(event.payload, FeedbackRecorded)
                grade = GOOD if event.payload.useful else AGAIN
                schedule = review(before, grade, at)
            else:
                continue
            made[r.memory_id] = schedule
            payload = MemoryScheduled(
                stability=schedule.stability,
                difficulty=schedule.difficulty,
                reviewed_at=schedule.reviewed_at,
                reps=schedule.reps,
                lapses=schedule.lapses,
                grade=grade,
            )
            out.append(Derived(MEMORY_SCHEDULED, r.namespace, r.memory_id, payload, r.position))
        return out

    def _scheduled(self, memory_id: str) -> Schedule | None:
        """The memory's schedule as this actor last logged it (None: never stored, or erased)."""
        latest = self.history.latest(DECAY_STREAM, memory_id)
        p = None if latest is None else latest.payload
        if not isinstance(p, MemoryScheduled):
            return None
        return Schedule(p.stability, p.difficulty, p.reviewed_at, p.reps, p.lapses)


def _moment(occurred: datetime | None, recorded: datetime) -> datetime:
    """Feedback counts when it was recorded; a memory from when it happened."""
    return occurred or recorded
