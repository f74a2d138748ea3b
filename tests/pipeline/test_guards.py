"""Guardrails: rules matched by pattern, words and meaning (the threshold's hand-made set),
warnings learned from failed episodes (listed, removable, never a block), decisions recorded
in the rule's history with who asked; over HTTP with the keys' scopes; the CLI's exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.errors import NamespaceNotFound, ValidationError
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.client import AccessDenied
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.httpserver import serving
from tests.pipeline.test_cli import mnemo

RULES = {
    "Never drop a production database": "block",
    "Ask before deleting user files": "warn",
    "Do not push directly to main": "block",
    "Never share API keys in chat": "warn",
}
BREAKING = {  # each breaks one rule: its cosine with it was 0.48-0.64 when the threshold was set
    "delete the prod db": "block",
    "drop table users in production": "block",
    "rm the user's documents folder": "warn",
    "git push origin main --force": "block",
    "paste the api key into slack": "warn",
}
HARMLESS = [
    "read the deployment docs",
    "restart the web server",
    "list files in the home directory",
    "create a new branch",
    "summarise the meeting notes",
    "query the staging database",
]


@pytest.fixture
def mem(home: Path) -> Iterator[Memory]:
    with Memory.open(home) as m:
        yield m


def test_rules_match_by_meaning_on_the_set_the_threshold_was_chosen_on(mem: Memory) -> None:
    for text, action in RULES.items():
        mem.guards.add(text, "ops", action)
    for action, expected in BREAKING.items():
        decided = mem.guards.check(action, "ops")
        assert decided.decision == expected, (action, decided.to_json())
        assert decided.matched[0].why.startswith("similar ")
    for action in HARMLESS:
        assert mem.guards.check(action, "ops").decision == "allow", action


def test_patterns_words_removal_and_the_record_of_each_decision(mem: Memory) -> None:
    rule = mem.guards.add("Ask before deleting user files", "ops", "warn", pattern=r"rm\s+-rf")
    rule_id = str(rule.memory_id)
    words = str(mem.guards.add("never restart the billing service", "ops", "block").memory_id)
    decided = mem.guards.check("rm -rf /home/ana/photos", "ops", asked_by="agent-7")
    assert decided.decision == "warn" and decided.matched[0].why == "pattern"
    blocked = mem.guards.check("Restart billing service now", "ops")
    assert blocked.decision == "block" and blocked.matched[0].why.startswith("words ")
    trail = [e for e in mem.audit(rule_id) if e.kind == "guard.decided"]
    assert trail and trail[0].payload is not None
    assert trail[0].payload["asked_by"] == "agent-7" and trail[0].payload["decision"] == "warn"
    assert trail[0].position == decided.position
    last = mem.log.input.last_position
    assert mem.guards.check("read the docs", "ops").decision == "allow"
    assert mem.log.input.last_position == last  # an allow is not recorded
    mem.guards.remove(words, "ops", "the service moved")
    assert mem.guards.check("Restart billing service now", "ops").decision == "allow"
    assert [r.rule_id for r in mem.guards.list("ops")] == [rule_id]
    with pytest.raises(ValidationError, match="no rule"):
        mem.guards.remove(words, "ops")
    with pytest.raises(ValidationError, match="regular expression"):
        mem.guards.add("bad", "ops", pattern="(")
    with pytest.raises(ValidationError):
        mem.guards.add("x", "ops", "forbid")


def test_warnings_learned_from_failed_episodes_are_listed_removable_and_never_block(
    mem: Memory,
) -> None:
    for i in range(5):  # the step came before a failure in 4 of the 5 episodes that took it
        eid = mem.episodes.start(f"Roll out release {i}", "ops").memory_id
        mem.episodes.step(eid, "kubectl", "rollout restart")
        mem.episodes.complete(eid, i == 0)
    for i in range(3):  # failures without the step: it is not what they share
        eid = mem.episodes.start(f"Write notes {i}", "ops").memory_id
        mem.episodes.step(eid, "docs", "write")
        mem.episodes.complete(eid, i != 0)
    (learned,) = [r for r in mem.guards.list("ops") if r.learned]
    assert learned.action == "warn" and (learned.tool, learned.step) == (
        "kubectl",
        "rollout restart",
    )
    assert learned.learned == "4 of 5 episodes that took it failed"
    decided = mem.guards.check("kubectl rollout restart deployment/web", "ops")
    assert decided.decision == "warn" and decided.matched[0].why.startswith("learned: ")
    assert mem.guards.check("kubectl get pods", "ops").decision == "allow"
    mem.guards.remove(learned.rule_id, "ops", "expected while we migrate")
    assert not [r for r in mem.guards.list("ops") if r.learned]
    assert mem.guards.check("kubectl rollout restart deployment/web", "ops").decision == "allow"


def test_an_erase_takes_the_rules(mem: Memory) -> None:
    mem.guards.add("Never wire money abroad", "bank", "block")
    mem.erase("bank")
    duck = mem.runtime.projector.duck.con
    assert duck.execute("SELECT count(*) FROM guard_rules").fetchall() == [(0,)]
    with pytest.raises(NamespaceNotFound):
        mem.guards.check("wire money", "bank")


def test_over_http_a_key_checks_its_own_namespace_and_is_named_as_who_asked(home: Path) -> None:
    with Memory.open(home) as mem:
        rule = str(mem.guards.add("Never drop a production database", "ops", "block").memory_id)
        mem.guards.add("Never email customers", "sales", "block")
        keys = KeyStore(home / "keys.json")
        ops, key = keys.create(["ops"])
        with serving(create_app(mem, keys)) as url, Memory.connect(url, ops) as client:
            decided = client.guards.check("drop table users in production", "ops")
            assert decided.decision == "block" and decided.matched[0].rule.rule_id == rule
            assert [r.rule_id for r in client.guards.list("ops")] == [rule]
            with pytest.raises(AccessDenied):
                client.guards.check("email the customers", "sales")
            with pytest.raises(AccessDenied):
                client.guards.add("Anything goes", "sales")
        trail = [e for e in mem.audit(rule) if e.kind == "guard.decided"]
        assert trail[-1].payload is not None and trail[-1].payload["asked_by"] == key.id


def test_the_cli_says_the_decision_in_its_exit_status(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rule = "Never drop a production database"
    added = mnemo(home, "guard", "add", rule, "--ns", "ops", "--action", "block")
    assert added.returncode == 0, added.stderr
    mnemo(home, "guard", "add", "Ask first", "--ns", "ops", "--match", r"rm\s+-rf")
    blocked = mnemo(
        home, "guard", "check", "drop table users in production", "--ns", "ops", "--json"
    )
    assert blocked.returncode == 4 and json.loads(blocked.stdout)["decision"] == "block"
    assert mnemo(home, "guard", "check", "rm -rf tmp", "--ns", "ops").returncode == 3
    assert mnemo(home, "guard", "check", "read the docs", "--ns", "ops").returncode == 0
    listed = mnemo(home, "guard", "list", "--ns", "ops", "--json")
    assert [json.loads(line)["action"] for line in listed.stdout.splitlines()] == ["block", "warn"]
