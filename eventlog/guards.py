"""Guardrails as events of the input stream: a rule about actions an agent may take
(`guard.added`: its text, `warn` or `block`, an optional regular expression), its removal
(`guard.removed`), and each warning or block a check gave (`guard.decided`: the action asked
about, the decision, the rules and why, who asked), so an audit of a rule shows what it
stopped. Sealed with the namespace's key like a memory's words, erased with it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import pydantic
from pydantic import Field

from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.errors import MemoryNotFound, ValidationError
from mnemoflow.eventlog.inputs import InputLog
from mnemoflow.eventlog.payloads import Payload, register_payload
from mnemoflow.eventlog.schema import (
    GUARD_ADDED,
    GUARD_DECIDED,
    GUARD_REMOVED,
    Receipt,
    Record,
)

GuardAction = Literal["warn", "block"]
Decision = Literal["allow", "warn", "block"]


class GuardAdded(Payload):
    text: str
    action: GuardAction
    pattern: str | None = None  # a regular expression the action is searched with


class GuardRemoved(Payload):
    reason: str | None = None
    learned: str | None = None  # a learned warning's id, when that is what is removed


class Matched(Payload):
    rule_id: str
    why: str  # "pattern", "words", "similar 0.83", "learned: ..."


class GuardDecided(Payload):
    action: str
    decision: Decision
    matched: list[Matched] = Field(default_factory=list)
    asked_by: str | None = None  # the API key's id, or the local actor


register_payload(GUARD_ADDED, GuardAdded)
register_payload(GUARD_REMOVED, GuardRemoved)
register_payload(GUARD_DECIDED, GuardDecided)


class GuardLog:
    """Add and remove rules, and record decisions, in the input stream."""

    def __init__(self, inputs: InputLog) -> None:
        self._inputs = inputs

    def add(
        self,
        text: str,
        namespace: str,
        action: str,
        *,
        pattern: str | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        """A new rule; its id is the receipt's `memory_id`."""
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValidationError(f"pattern is not a regular expression: {exc}") from None
        payload = _checked(
            text=check.text(text, self._inputs.log.settings), action=action, pattern=pattern
        )
        return self._inputs.begin(GUARD_ADDED, namespace, payload, occurred_at, event_id)

    def remove(
        self, rule_id: str, reason: str | None = None, event_id: str | None = None
    ) -> Receipt:
        def made(records: list[Record]) -> Payload:
            if any(r.kind == GUARD_REMOVED for r in records):
                raise MemoryNotFound(f"rule {rule_id} was removed already")
            return GuardRemoved(reason=reason)

        return self._inputs.change(
            GUARD_REMOVED, rule_id, made, event_id, None, subject=GUARD_ADDED
        )

    def remove_learned(self, learned_id: str, namespace: str, reason: str | None) -> Receipt:
        """Silence a learned warning: recorded as a rule of its own that removes it."""
        payload = GuardRemoved(reason=reason, learned=check.event_id(learned_id))
        return self._inputs.begin(GUARD_REMOVED, namespace, payload, None, f"learned:{learned_id}")

    def decided(self, namespace: str, decision: GuardDecided, rule_id: str | None) -> Receipt:
        """Record a warning or a block in the history of the rule that gave it (`mnemo audit
        RULE` shows it); one given by learned warnings alone is recorded on its own."""
        if rule_id is None:
            return self._inputs.begin(GUARD_DECIDED, namespace, decision, None, None)
        return self._inputs.change(
            GUARD_DECIDED, rule_id, lambda records: decision, None, None, subject=GUARD_ADDED
        )


def _checked(**fields: object) -> GuardAdded:
    try:
        return GuardAdded.model_validate(fields)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "rule"
        raise ValidationError(f"{where}: {first['msg']}") from None
