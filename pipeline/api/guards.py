"""Guardrails through the Python API (`mem.guards`): rules about actions, checked before an
agent takes one.

A check of an action against a namespace's rules: a rule matches by its regular expression
(`pattern`), by its words (at least three quarters of the rule's index terms, and two or more,
are in the action), or by meaning (the cosine of the two texts' embeddings at least
`SIMILAR`). Learned warnings come from the namespace's episodes: a step (tool and action)
that came before a failure in at least `LEARNED_LEAST` completed episodes, in at least
`LEARNED_RATE` of those that took it, warns when an action names that tool and action; it is
listed with the rules and can be removed, never blocks. The decision is `block` if a block
rule matched, `warn` if anything matched, else `allow`; a warning or a block is recorded in
the log (what was asked, which rules and why, who asked), in the history of the rule that
gave it.
"""

from __future__ import annotations

import builtins
import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.eventlog.guards import Decision, GuardDecided, GuardLog, Matched
from mnemoflow.eventlog.schema import Receipt
from mnemoflow.projections.text import tokenize

if TYPE_CHECKING:
    from mnemoflow.pipeline.api.memory import Memory

# The cosine of rule and action embeddings (all-MiniLM-L6-v2 int8) that matches, chosen on a
# small hand-made set (tests/pipeline/test_guards.py): five actions that break one of four
# rules scored 0.48-0.64 against it, six harmless ones 0.40 at most against any.
SIMILAR = 0.45
LEARNED_LEAST = 3  # failed episodes a step must have come before
LEARNED_RATE = 0.6  # share of the episodes that took the step which failed


@dataclass(frozen=True)
class GuardRule:
    rule_id: str
    text: str
    action: str  # "warn", "block"
    pattern: str | None = None
    learned: str | None = None  # for a learned warning: what it learned from
    tool: str | None = None  # for a learned warning: the step it warns of
    step: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GuardMatch:
    rule: GuardRule
    why: str

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule.to_json(), "why": self.why}


@dataclass(frozen=True)
class GuardDecision:
    action: str
    decision: str  # "allow", "warn", "block"
    matched: list[GuardMatch] = field(default_factory=list)
    position: int | None = None  # where the log recorded a warning or block

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "decision": self.decision,
            "matched": [m.to_json() for m in self.matched],
            "position": self.position,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> GuardDecision:
        matched = [GuardMatch(GuardRule(**m["rule"]), m["why"]) for m in doc["matched"]]
        return cls(doc["action"], doc["decision"], matched, doc["position"])


class Guards:
    """A memory's guardrails (`mem.guards`): `add`, `remove`, `list`, `check`."""

    def __init__(self, memory: Memory) -> None:
        self._memory = memory
        self._log = GuardLog(memory._inputs)
        self._vectors: dict[str, np.ndarray] = {}  # rule texts embedded, by text

    def add(
        self,
        text: str,
        namespace: str,
        action: str = "warn",
        *,
        pattern: str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        """A rule; its id is the receipt's `memory_id`."""
        return self._log.add(text, namespace, action, pattern=pattern, event_id=event_id)

    def remove(self, rule_id: str, namespace: str, reason: str | None = None) -> Receipt:
        """Remove a rule, or silence a learned warning (its id starts `learned:`)."""
        if rule_id.startswith("learned:"):
            if rule_id not in {
                r.rule_id for r in self._learned(self._memory._caught_up(namespace))
            }:
                raise ValidationError(f"no learned warning {rule_id!r} in {namespace!r}")
            return self._log.remove_learned(rule_id, namespace, reason)
        if rule_id not in {r.rule_id for r in self.list(namespace)}:
            raise ValidationError(f"no rule {rule_id!r} in force in {namespace!r}")
        return self._log.remove(rule_id, reason)

    def list(self, namespace: str) -> builtins.list[GuardRule]:
        """The rules in force, oldest first, then the learned warnings."""
        from mnemoflow.projections.guard_rows import rules

        namespace_id = self._memory._caught_up(namespace)
        con = self._memory.runtime.projector.duck.con
        found = [
            GuardRule(r.rule_id, r.text, r.action, r.pattern) for r in rules(con, namespace_id)
        ]
        return found + self._learned(namespace_id)

    def check(self, action: str, namespace: str, *, asked_by: str | None = None) -> GuardDecision:
        """Whether the action may be taken: allow, warn or block, with the rules that matched
        and why. A warning or a block is recorded in the log."""
        action = check.text(action, self._memory.settings.log)
        terms = set(tokenize(action))
        matched = []
        in_force = self.list(namespace)
        meaning = self._similarities(action, [r for r in in_force if r.learned is None])
        for rule in in_force:
            why = self._why(rule, action, terms, meaning.get(rule.rule_id, 0.0))
            if why is not None:
                matched.append(GuardMatch(rule, why))
        if not matched:
            return GuardDecision(action, "allow")
        decision: Decision = "block" if any(m.rule.action == "block" for m in matched) else "warn"
        first = next((m.rule.rule_id for m in matched if m.rule.learned is None), None)
        logged = GuardDecided(
            action=action,
            decision=decision,
            matched=[Matched(rule_id=m.rule.rule_id, why=m.why) for m in matched],
            asked_by=asked_by,
        )
        receipt = self._log.decided(namespace, logged, first)
        return GuardDecision(action, decision, matched, receipt.position)

    def _why(self, rule: GuardRule, action: str, terms: set[str], cosine: float) -> str | None:
        if rule.learned is not None:
            wanted = set(tokenize(rule.tool or "")) | set(tokenize(rule.step or ""))
            return f"learned: {rule.learned}" if wanted and wanted <= terms else None
        if rule.pattern is not None and re.search(rule.pattern, action, re.IGNORECASE):
            return "pattern"
        words = set(tokenize(rule.text))
        shared = words & terms
        if words and len(shared) >= min(2, len(words)) and len(shared) >= 0.75 * len(words):
            return f"words {len(shared)}/{len(words)}"
        if cosine >= SIMILAR:
            return f"similar {cosine:.2f}"
        return None

    def _similarities(self, action: str, rules: builtins.list[GuardRule]) -> dict[str, float]:
        if not rules:
            return {}
        embed = self._memory.runtime.engine.embed
        missing = [r.text for r in rules if r.text not in self._vectors]
        vectors = embed([action, *missing])
        for text, vector in zip(missing, vectors[1:], strict=True):
            self._vectors[text] = _unit(vector)
        asked = _unit(vectors[0])
        return {r.rule_id: float(asked @ self._vectors[r.text]) for r in rules}

    def _learned(self, namespace_id: str) -> builtins.list[GuardRule]:
        from mnemoflow.projections.guard_rows import failure_precursors, silenced

        con = self._memory.runtime.projector.duck.con
        quiet = silenced(con, namespace_id)
        out = []
        for tool, step, failed, total in failure_precursors(
            con, namespace_id, LEARNED_LEAST, LEARNED_RATE
        ):
            digest = hashlib.sha256(f"{tool}\x00{step}".encode()).hexdigest()[:16]
            rule_id = f"learned:{digest}"
            if rule_id not in quiet:
                text = f"{tool}: {step} came before a failure in {failed} of {total} episodes"
                learned = f"{failed} of {total} episodes that took it failed"
                out.append(GuardRule(rule_id, text, "warn", None, learned, tool, step))
        return out


def _unit(vector: Any) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm else v
