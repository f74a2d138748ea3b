"""Episodes: what an agent did in a task, as events of the input stream.

`episode.started` (the task, its context), `episode.step` (a tool and an action, with how it
went), `episode.completed` (success or failure, a score, the result). An episode's events
carry its id where a memory's carry the memory's, so its history is read the same way, they
are sealed with the namespace's key like a memory's words (an erase takes them too), and a
caller's event id makes each call safe to retry. A step or a completion after the episode was
completed, or to an id that is no episode, is refused and appends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import pydantic
from pydantic import Field, StrictBool, StrictInt

from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.errors import EpisodeClosed, MemoryNotFound, ValidationError
from mnemoflow.eventlog.inputs import InputLog
from mnemoflow.eventlog.log import EventLog
from mnemoflow.eventlog.payloads import Payload, register_payload
from mnemoflow.eventlog.schema import (
    EPISODE_COMPLETED,
    EPISODE_STARTED,
    EPISODE_STEP,
    Receipt,
    Record,
)

_NAME = Field(min_length=1, max_length=200)
_STEP_ARGUMENTS = frozenset(
    {"tool", "action", "error", "latency_ms", "tokens", "observation", "occurred_at", "event_id"}
)


class EpisodeStarted(Payload):
    task: str
    domain: str | None = Field(None, max_length=200)
    language: str | None = Field(None, max_length=100)
    tags: list[str] = Field(default_factory=list, max_length=50)

    omitted_when_none: ClassVar[frozenset[str]] = frozenset({"domain", "language"})


class EpisodeStep(Payload):
    tool: str = _NAME
    action: str = _NAME
    ok: StrictBool = True
    error: str | None = None  # the message, when the step failed
    latency_ms: float | None = Field(None, ge=0)
    tokens: StrictInt | None = Field(None, ge=0)
    observation: str | None = None

    omitted_when_none: ClassVar[frozenset[str]] = frozenset(
        {"error", "latency_ms", "tokens", "observation"}
    )


class EpisodeCompleted(Payload):
    success: StrictBool
    score: float = Field(ge=0, le=1)  # given, or computed from the steps (see `score_of`)
    score_given: StrictBool = False
    result: str | None = None
    error: str | None = None
    duration_ms: float = Field(ge=0)
    steps: StrictInt = Field(ge=0)
    failed_steps: StrictInt = Field(ge=0)


register_payload(EPISODE_STARTED, EpisodeStarted)
register_payload(EPISODE_STEP, EpisodeStep)
register_payload(EPISODE_COMPLETED, EpisodeCompleted)


def score_of(success: bool, steps: int, failed: int) -> float:
    """An episode's score when none is given: a failure 0; a success 1, less 0.1 for each
    step that failed on the way (recovered from), never below 0.5."""
    if not success:
        return 0.0
    return max(0.5, 1.0 - 0.1 * failed)


@dataclass(frozen=True, slots=True)
class Episode:
    """An episode as its events tell it (opened; None fields once erased)."""

    episode_id: str
    namespace: str
    started: EpisodeStarted | None
    started_at: datetime | None
    steps: list[tuple[datetime | None, EpisodeStep | None]]
    completed: EpisodeCompleted | None
    completed_at: datetime | None
    erased: bool


class EpisodeLog:
    """Start, step and complete episodes in the input stream; read one back."""

    def __init__(self, inputs: InputLog, log: EventLog) -> None:
        self._inputs = inputs
        self._log = log

    def start(
        self,
        task: str | bytes,
        namespace: str,
        *,
        domain: str | None = None,
        language: str | None = None,
        tags: Sequence[str] = (),
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
        episode_id: str | None = None,
    ) -> Receipt:
        """A new episode; its id is the receipt's `memory_id` (`episode_id`: one it must
        keep, as an import does)."""
        if isinstance(tags, str) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise ValidationError("tags must be a list of non-empty strings")
        payload = _checked(
            EpisodeStarted,
            task=check.text(task, self._log.settings),
            domain=domain,
            language=language,
            tags=list(dict.fromkeys(tags)),
        )
        return self._inputs.begin(
            EPISODE_STARTED, namespace, payload, occurred_at, event_id, episode_id
        )

    def step(
        self,
        episode_id: str,
        tool: str,
        action: str,
        *,
        error: str | None = None,
        latency_ms: float | None = None,
        tokens: int | None = None,
        observation: str | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
        namespace: str | None = None,
    ) -> Receipt:
        """One step: `error` set means it failed (with that message). `namespace`: the name
        of the namespace the episode must be in."""
        payload = self._step_payload(tool, action, error, latency_ms, tokens, observation)

        def made(records: list[Record]) -> Payload:
            _open_episode(episode_id, records)
            return payload

        return self._inputs.change(
            EPISODE_STEP,
            episode_id,
            made,
            event_id,
            occurred_at,
            subject=EPISODE_STARTED,
            namespace=namespace,
        )

    def step_many(
        self, episode_id: str, steps: Sequence[Mapping[str, Any]], *, namespace: str | None = None
    ) -> list[Receipt]:
        """Many steps of one episode with one durable write, each a mapping of `step`'s
        arguments (`tool`, `action`, `error`, `latency_ms`, `tokens`, `observation`,
        `occurred_at`, `event_id`); all are checked before any is appended."""
        if not steps:
            raise ValidationError("no steps to log")
        payloads = []
        for i, given in enumerate(steps, 1):
            unknown = set(given) - _STEP_ARGUMENTS
            if unknown or not {"tool", "action"} <= set(given):
                raise ValidationError(
                    f"step {i}: takes tool and action, of {sorted(_STEP_ARGUMENTS)}"
                )
            fields = {k: v for k, v in given.items() if k not in ("occurred_at", "event_id")}
            try:
                payloads.append(self._step_payload(**fields))
            except ValidationError as exc:
                raise ValidationError(f"step {i}: {exc}") from None

        def made(records: list[Record]) -> list[Payload]:
            _open_episode(episode_id, records)
            return list(payloads)

        return self._inputs.change_many(
            EPISODE_STEP,
            episode_id,
            made,
            [s.get("event_id") for s in steps],
            [s.get("occurred_at") for s in steps],
            subject=EPISODE_STARTED,
            namespace=namespace,
        )

    def _step_payload(
        self,
        tool: str,
        action: str,
        error: str | None = None,
        latency_ms: float | None = None,
        tokens: int | None = None,
        observation: str | None = None,
    ) -> EpisodeStep:
        if observation is not None:
            observation = check.text(observation, self._log.settings)
        if error is not None:
            error = check.text(error, self._log.settings)
        if isinstance(latency_ms, bool) or not isinstance(latency_ms, int | float | None):
            raise ValidationError(f"latency_ms must be a number, got {latency_ms!r}")
        return _checked(
            EpisodeStep,
            tool=tool,
            action=action,
            ok=error is None,
            error=error,
            latency_ms=None if latency_ms is None else float(latency_ms),
            tokens=tokens,
            observation=observation,
        )

    def complete(
        self,
        episode_id: str,
        success: bool,
        *,
        score: float | None = None,
        result: str | None = None,
        error: str | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
        namespace: str | None = None,
    ) -> Receipt:
        if not isinstance(success, bool):
            raise ValidationError(f"success must be true or false, got {success!r}")
        if score is not None and (isinstance(score, bool) or not 0 <= float(score) <= 1):
            raise ValidationError(f"score must be a number from 0 to 1, got {score!r}")
        when = check.occurred_at(occurred_at)
        if result is not None:
            result = check.text(result, self._log.settings)
        if error is not None:
            error = check.text(error, self._log.settings)

        def made(records: list[Record]) -> Payload:
            _open_episode(episode_id, records)
            steps = [self._log.open_payload(r) for r in records if r.kind == EPISODE_STEP]
            failed = sum(1 for p in steps if isinstance(p, EpisodeStep) and not p.ok)
            began = records[0].occurred_at or records[0].recorded_at
            ended = datetime.now(UTC) if when is None else when
            ended = ended if ended.tzinfo else ended.replace(tzinfo=UTC)
            return _checked(
                EpisodeCompleted,
                success=success,
                score=score_of(success, len(steps), failed) if score is None else float(score),
                score_given=score is not None,
                result=result,
                error=error,
                duration_ms=max(0.0, (ended - began).total_seconds() * 1000),
                steps=len(steps),
                failed_steps=failed,
            )

        return self._inputs.change(
            EPISODE_COMPLETED,
            episode_id,
            made,
            event_id,
            when,
            subject=EPISODE_STARTED,
            namespace=namespace,
        )

    def events(self, episode_id: str) -> Episode:
        """The episode as its events tell it (MemoryNotFound: no such episode)."""
        check.memory_id(episode_id)
        records = list(self._log.input.read(memory_id=episode_id))
        if not records or records[0].kind != EPISODE_STARTED:
            raise MemoryNotFound(f"no episode {episode_id!r} in this log")
        opened = [(r, self._log.open_payload(r)) for r in records]
        started = opened[0][1]
        done = [(r, p) for r, p in opened if r.kind == EPISODE_COMPLETED]
        return Episode(
            episode_id=episode_id,
            namespace=self._log.namespace_name(records[0].namespace),
            started=started if isinstance(started, EpisodeStarted) else None,
            started_at=records[0].occurred_at,
            steps=[
                (r.occurred_at, p if isinstance(p, EpisodeStep) else None)
                for r, p in opened
                if r.kind == EPISODE_STEP
            ],
            completed=done[0][1] if done and isinstance(done[0][1], EpisodeCompleted) else None,
            completed_at=done[0][0].occurred_at if done else None,
            erased=started is None,
        )


def _open_episode(episode_id: str, records: list[Record]) -> None:
    if any(r.kind == EPISODE_COMPLETED for r in records):
        raise EpisodeClosed(f"episode {episode_id} is completed: it takes no more events")


P = TypeVar("P", bound=Payload)


def _checked(model: type[P], **fields: object) -> P:
    """The payload, or the first rule it breaks as a ValidationError."""
    try:
        return model.model_validate(fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise ValidationError(f"{where}: {first['msg']}") from None
