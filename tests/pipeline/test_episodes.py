"""Episodes beyond the shared API contract: the projection rebuilds to the same rows, an erase
takes them from every table, a key reaches its own namespace's episodes only, and the CLI
runs an agent's task from start to context."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog.errors import NamespaceNotFound
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.client import AccessDenied
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.httpserver import serving
from tests.pipeline.test_cli import mnemo, ok_json


@pytest.fixture
def mem(home: Path) -> Iterator[Memory]:
    with Memory.open(home) as m:
        yield m


def _episode(mem: Memory, ns: str, task: str) -> str:
    eid = str(mem.episodes.start(task, ns, tags=["t"]).memory_id)
    mem.episodes.step(eid, "shell", "run tests", error="2 failed", observation="see log")
    mem.episodes.step(eid, "shell", "run tests")
    mem.episodes.complete(eid, True, result="green")
    return eid


def test_the_projection_rebuilds_to_the_same_rows_and_an_erase_takes_every_row(
    mem: Memory,
) -> None:
    kept = _episode(mem, "ana", "Fix the flaky login test")
    gone = _episode(mem, "bo", "Fix the flaky signup test")
    mem.sync()
    before = mem.checksums()
    assert mem.rebuild() > 0 and mem.checksums() == before  # incremental == replayed
    mem.erase("bo")
    duck = mem.runtime.projector.duck.con
    assert duck.execute("SELECT count(*) FROM episodes").fetchall() == [(1,)]
    assert duck.execute(
        "SELECT count(*) FROM episode_steps WHERE episode_id = ?", [gone]
    ).fetchall() == [(0,)]
    with pytest.raises(NamespaceNotFound):
        mem.episodes.list("bo")
    assert mem.episodes.get(gone).task is None  # its events say nothing any more
    assert [e.episode_id for e in mem.episodes.list("ana")] == [kept]
    path = mem.runtime.projections_dir / "memories.duckdb"
    mem.close()
    assert b"signup" not in path.read_bytes()  # nor in a free page of the file


def test_a_key_reaches_its_own_namespaces_episodes_only(home: Path) -> None:
    with Memory.open(home) as mem:
        theirs = _episode(mem, "bo", "Rotate the API keys")
        keys = KeyStore(home / "keys.json")
        ana, _ = keys.create(["ana"])
        with serving(create_app(mem, keys)) as url, Memory.connect(url, ana) as client:
            mine = client.episodes.start("Rotate my keys", "ana").memory_id
            assert mine is not None and client.episodes.get(mine).task == "Rotate my keys"
            for call in (
                lambda: client.episodes.get(theirs),
                lambda: client.episodes.step(theirs, "vault", "rotate"),
                lambda: client.episodes.list("bo"),
                lambda: client.context("rotate keys", "bo"),
                lambda: client.episodes.start("Sneak in", "bo"),
            ):
                with pytest.raises(AccessDenied) as denied:
                    call()
                assert denied.value.status == 403
        assert len(mem.episodes.get(theirs).steps) == 2  # nothing was added


def test_the_cli_records_a_task_and_gives_the_next_one_its_context(tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = ok_json(
        home, "episode", "start", "Migrate the orders table", "--ns", "db", "--tag", "migration"
    )
    eid = started["episode_id"]
    step = ["episode", "step", eid, "--tool", "psql", "--action", "ALTER TABLE"]
    ok_json(home, *step, "--error", "lock timeout", "--latency-ms", "5000")
    ok_json(home, *step, "--observation", "done in 2 s")
    done = ok_json(home, "episode", "complete", eid, "--success", "--result", "migrated")
    assert (done["outcome"], done["score"]) == ("success", 0.9)
    shown = ok_json(home, "episode", "show", eid)
    assert [s["ok"] for s in shown["steps"]] == [False, True]
    context = ok_json(home, "context", "migrate the customers table", "--ns", "db")
    assert set(context) == {"episodes", "patterns", "memories"}
    assert context["patterns"] == []  # one episode: no pattern holds yet
    (episode,) = context["episodes"]
    assert episode["episode_id"] == eid
    assert episode["outcome"] == "success" and episode["relevance"] > 0
    listed = mnemo(home, "episode", "list", "--ns", "db", "--json")
    assert [json.loads(line)["episode_id"] for line in listed.stdout.splitlines()] == [eid]
    refused = mnemo(home, "episode", "complete", eid, "--failure")
    assert refused.returncode == 1 and "completed" in refused.stderr
    neither = mnemo(home, "episode", "complete", eid)
    assert neither.returncode == 1 and "--success or --failure" in neither.stderr


def test_a_task_finds_past_episodes_by_meaning_and_recall_never_returns_them(
    mem: Memory,
) -> None:
    report = _episode(mem, "ops", "Summarise the DNS incident report")
    trip = _episode(mem, "ops", "Book a flight to Kyoto")
    mem.store("The DNS outage lasted two hours.", "ops")
    # No word in common with either task: only the tasks' embeddings can find one.
    (travel,) = mem.context("plan travel to Japan", "ops", k=1).episodes
    assert travel.episode_id == trip and travel.relevance is not None
    assert mem.context("water the office plants", "ops").episodes == []  # near neither
    hits = mem.recall("summarise the incident report, book a flight", "ops", k=10)
    assert hits and not {h.memory_id for h in hits} & {report, trip}  # tasks are no memories
    kinds = {e.kind for e in mem.events(stream="embedded")}
    assert kinds == {"memory.embedded", "task.embedded"}
    namespace = mem._inputs.namespace_id("ops")
    assert f"{namespace}/task" in mem.runtime.projector.vectors.checksums()
    mem.erase("ops")
    assert not any(key.startswith(namespace) for key in mem.runtime.projector.vectors.checksums())


def test_the_kept_episodes_follow_new_completions_and_forget_an_erased_namespace(
    mem: Memory,
) -> None:
    first = _episode(mem, "ops", "Rotate the vault tokens")
    _episode(mem, "ops", "Water the office plants")
    _episode(mem, "dev", "Rotate the signing keys")
    ranked = mem.context("rotate tokens", "ops", k=5).episodes
    assert ranked[0].episode_id == first
    index = mem.episodes.index
    assert {ns for ns, _ in index._kept.items()} == {mem._inputs.namespace_id("ops")}
    later = _episode(mem, "ops", "Rotate the vault tokens again, tokens first")
    second = mem.context("rotate tokens", "ops", k=5).episodes  # laid over the kept copy
    assert {e.episode_id for e in second[:2]} == {first, later}
    bm25 = {e.episode_id: e.relevance for e in second}
    copy = index._kept.get(mem._inputs.namespace_id("ops"))
    assert copy is not None and len(copy.rows) == 3
    index._kept.pop(mem._inputs.namespace_id("ops"))  # read whole again: the same ranking
    assert {
        e.episode_id: e.relevance for e in mem.context("rotate tokens", "ops", k=5).episodes
    } == bm25
    under_way = str(mem.episodes.start("Rotate everything", "ops").memory_id)
    assert under_way not in {e.episode_id for e in mem.context("rotate", "ops").episodes}
    mem.context("rotate keys", "dev")
    mem.erase("ops")
    assert index._kept.items() == []  # every copy read before the erasure
    assert mem.context("rotate keys", "dev").episodes  # read again
    assert all("vault" not in row.task for _, view in index._kept.items() for row in view.rows)
