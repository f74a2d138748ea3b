"""Patterns through the system: a new task's context, the recoveries from an error, the audit
trail of a pattern, a rebuild and a past view, erasure, a key's reach over HTTP, the remote
client and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.errors import MemoryNotFound, NamespaceNotFound, ValidationError
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.client import AccessDenied
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.httpserver import serving
from tests.pipeline.test_cli import mnemo

RECIPE = ["git:pull", "docker:build", "pytest:run", "kubectl:apply"]


def _deploys(mem: Memory, namespace: str, n: int, start: int = 0) -> None:
    """Deploys by the recipe; every fourth build times out first and is fixed by pruning the
    cache; every fifth skips the tests for a forced apply, and fails."""
    for i in range(start, start + n):
        run = str(mem.episodes.start(f"deploy the {i} service to staging", namespace).memory_id)
        steps: list[dict[str, object]] = [{"tool": "git", "action": "pull"}]
        if i % 4 == 0:
            steps += [
                {"tool": "docker", "action": "build", "error": f"build timed out after {9 + i}s"},
                {"tool": "cache", "action": "prune"},
            ]
        steps.append({"tool": "docker", "action": "build"})
        failed = i % 5 == 4
        if failed:
            steps.append({"tool": "kubectl", "action": "apply --force"})
        else:
            steps += [{"tool": "pytest", "action": "run"}, {"tool": "kubectl", "action": "apply"}]
        mem.episodes.step_many(run, steps)
        mem.episodes.complete(run, not failed)


def test_a_new_task_gets_its_kinds_recipe_and_an_error_its_recovery(home: Path) -> None:
    with Memory.open(home) as mem:
        _deploys(mem, "ops", 12)
        mem.store("Staging deploys need the VPN.", "ops")
        context = mem.context("deploy the inventory service to staging", "ops", k=3)
        first = context.patterns[0]
        assert (first.kind, first.steps, first.success_rate) == ("tool_sequence", RECIPE, 1.0)
        assert first.support == 10 and first.relevance is not None and first.relevance > 0.3
        kinds = {p.kind for p in context.patterns}
        assert kinds == {"tool_sequence", "decision_point", "error_recovery"}
        (recovery,) = mem.patterns.find("ops", error="Build timed out after 120s")
        assert recovery.recovery == ["cache:prune", "docker:build"]
        assert recovery.error == "build timed out after <n>s" and recovery.support == 3
        assert mem.patterns.find("ops", task="water the plants") == []
        assert mem.patterns.get(first.pattern_id) == first.__class__(
            **(first.to_json() | {"relevance": None})
        )
        with pytest.raises(ValidationError):
            mem.patterns.find("ops", kind="recipe")
        trail = mem.audit(recovery.pattern_id)
        logged = [e for e in trail if e.stream == "patterns"]
        causes = [e for e in trail if e.stream == "input"]
        assert len(logged) == 2 and {e.kind for e in causes} == {"episode.completed"}
        assert len(logged) == 2  # from the second episode that met the error on
        assert sorted(e.memory_id for e in causes) == sorted(recovery.episodes)  # all three


def test_rebuild_and_a_past_view_replay_the_patterns(home: Path) -> None:
    with Memory.open(home) as mem:
        _deploys(mem, "ops", 6)
        mem.sync()
        halfway = mem.log.input.last_position
        _deploys(mem, "ops", 6, start=6)
        mem.sync()
        before = mem.checksums()
        assert mem.rebuild() > 0 and mem.checksums() == before
        now = mem.patterns.find("ops", kind="tool_sequence")
    with Memory.open(home, as_of=halfway) as past:
        then = past.patterns.find("ops", kind="tool_sequence")
    assert [p.steps for p in then] == [p.steps for p in now] == [RECIPE]
    assert (then[0].support, now[0].support) == (5, 10)


def test_an_erasure_takes_the_patterns_everywhere(home: Path) -> None:
    with Memory.open(home) as mem:
        _deploys(mem, "ops", 8)
        _deploys(mem, "dev", 8)
        for _ in range(3):  # words only ops' episodes have
            run = str(mem.episodes.start("rotate the zebra keys", "ops").memory_id)
            steps = [{"tool": "vault", "action": "zebra-unseal"}, {"tool": "vault", "action": "x"}]
            mem.episodes.step_many(run, steps)
            mem.episodes.complete(run, True)
        pattern = mem.patterns.find("ops", task="rotate the zebra keys")[0].pattern_id
        ops = mem._inputs.namespace_id("ops")
        actor = next(f for f in mem.runtime.followers if f.name == "patterns")
        assert ops in actor._spaces
        mem.erase("ops")
        with pytest.raises(NamespaceNotFound):
            mem.patterns.find("ops")
        with pytest.raises(MemoryNotFound):
            mem.patterns.get(pattern)
        with pytest.raises(MemoryNotFound):
            mem.audit(pattern)  # its events cannot be opened any more
        assert mem.patterns.find("dev")  # the other namespace keeps its own
        mem.sync()
        assert ops not in actor._spaces  # nor does the actor keep a word of it
        path = mem.runtime.projections_dir / "memories.duckdb"
    assert b"zebra" not in path.read_bytes()


def test_a_key_reaches_its_own_namespaces_patterns_only(home: Path) -> None:
    with Memory.open(home) as mem:
        _deploys(mem, "bo", 8)
        _deploys(mem, "ana", 8)
        theirs = mem.patterns.find("bo")[0].pattern_id
        keys = KeyStore(home / "keys.json")
        ana, _ = keys.create(["ana"])
        admin, _ = keys.create([], admin=True)
        with serving(create_app(mem, keys)) as url:
            with Memory.connect(url, ana) as client:
                mine = client.patterns.find("ana", task="deploy the search service to staging")
                expected = mem.patterns.find("ana", task="deploy the search service to staging")
                assert mine == expected and mine[0].steps == RECIPE
                assert client.context("deploy it to staging", "ana").patterns
                assert client.patterns.get(mine[0].pattern_id) == mem.patterns.get(
                    mine[0].pattern_id
                )
                assert [e.stream for e in client.audit(mine[0].pattern_id)]
                for call in (
                    lambda: client.patterns.find("bo"),
                    lambda: client.patterns.get(theirs),
                    lambda: client.audit(theirs),
                ):
                    with pytest.raises(AccessDenied) as denied:
                        call()
                    assert denied.value.status == 403
            with Memory.connect(url, admin) as client:
                assert client.patterns.get(theirs).namespace == "bo"
                with pytest.raises(MemoryNotFound):
                    client.patterns.get("nobody:sequence")


def test_the_cli_lists_patterns_and_shows_them_in_a_tasks_context(home: Path) -> None:
    with Memory.open(home) as mem:
        _deploys(mem, "ops", 10)
    listed = mnemo(home, "patterns", "--ns", "ops", "--kind", "tool_sequence", "--json")
    assert listed.returncode == 0, listed.stderr
    (doc,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert doc["steps"] == RECIPE and doc["support"] == 8
    shown = mnemo(home, "context", "deploy the cart service to staging", "--ns", "ops")
    assert shown.returncode == 0, shown.stderr
    assert "sequence  git:pull -> docker:build -> pytest:run -> kubectl:apply" in shown.stdout
    assert "recovery  docker:build failed 'build timed out after <n>s'" in shown.stdout
    text = mnemo(home, "patterns", "--ns", "ops", "--error", "build timed out after 3s")
    assert "cache:prune -> docker:build" in text.stdout
    bad = mnemo(home, "patterns", "--ns", "nobody")
    assert bad.returncode == 1 and "nobody" in bad.stderr
