"""The Ray runner executes the same topology as the inline runner, exactly once, on real Ray."""

from __future__ import annotations

import pickle
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import ray

from mnemoflow import Memory
from mnemoflow.actors.embedder import Embedder
from mnemoflow.eventlog import EventLog, InputLog, StoreRequest
from mnemoflow.eventlog.episodes import EpisodeLog
from mnemoflow.eventlog.payloads import MemoryEmbedded
from mnemoflow.eventlog.schema import EMBEDDED_STREAM
from mnemoflow.pipeline.api.config import RaySettings, load_settings
from mnemoflow.pipeline.api.topology import DEFAULT_TOPOLOGY
from mnemoflow.pipeline.bench.log import synthetic_text
from mnemoflow.pipeline.service.ray_runner import FollowerService, RayRunner, actor_name
from mnemoflow.projections.text import dated

pytestmark = pytest.mark.usefixtures("ray_session")


def _store(home: Path, n: int) -> list[str]:
    with EventLog(home / "log", writes={"input"}) as log:
        receipts = InputLog(log).store_many(
            [
                StoreRequest(
                    synthetic_text(i),
                    f"user-{i % 3}",
                    occurred_at=datetime(2024, 1, 1 + i % 20, tzinfo=UTC),
                )
                for i in range(n)
            ]
        )
    return [r.memory_id or "" for r in receipts]


def _episodes(home: Path) -> None:
    """Episodes of two kinds of task, with an error recovered from: patterns to derive."""
    with EventLog(home / "log", writes={"input"}) as log:
        episodes = EpisodeLog(InputLog(log), log)
        for i in range(8):
            task = ("deploy the billing service", "book a trip to kyoto")[i % 2]
            run = str(episodes.start(task, f"user-{i % 3}").memory_id)
            steps: list[dict[str, object]] = [{"tool": "git", "action": "pull"}]
            if i % 4 == 0:
                steps.append({"tool": "docker", "action": "build", "error": f"timeout {i}s"})
            steps += [{"tool": "docker", "action": "build"}, {"tool": "kubectl", "action": "go"}]
            episodes.step_many(run, steps)
            episodes.complete(run, i % 3 != 2)


def _derived_once(home: Path, n: int) -> None:
    with EventLog(home / "log", writable=False) as log:
        sources = Counter(
            r.causation.position
            for r in log.stream(EMBEDDED_STREAM).read()
            if r.causation and r.kind == "memory.embedded"
        )
        assert sorted(sources) == list(range(1, n + 1))
        assert set(sources.values()) == {1}
        assert log.verify().ok


def _derived_streams(home: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Every derived event's id, kind and opened payload, per stream, with memory ids
    replaced by the input position that created them (ids are random per home)."""
    with EventLog(home / "log", writable=False) as log:
        ids = {r.memory_id: f"#{r.position}" for r in log.input.read() if r.memory_id}
        out = {}
        for node in DEFAULT_TOPOLOGY.nodes:
            events = []
            for r in log.stream(node.output).read():
                if r.kind == "actor.progress":
                    continue  # where a batch ended: runners may cut batches differently
                payload = log.open_payload(r)
                text = "" if payload is None else payload.model_dump_json()
                for memory_id, position in ids.items():
                    text = text.replace(memory_id, position)
                events.append((r.event_id, r.kind, text))
            out[node.output] = events
        return out


def test_ray_actors_derive_what_the_inline_runner_would(home: Path, tmp_path: Path) -> None:
    _store(home, 30)
    _episodes(home)
    settings = load_settings(home=home)
    runner = RayRunner(home, settings)
    try:
        derived = runner.run_until_caught_up()
        status = runner.status()
        assert all(s["lag"] == 0 for s in status.values())
        assert status["embedder"]["processed"] == 30 + 42  # the stores and episode events
    finally:
        runner.shutdown()
    _derived_once(home, 30)
    inline = tmp_path / "inline"
    _store(inline, 30)
    _episodes(inline)
    with Memory.open(home=inline) as mem:
        mem.sync()
    ray_streams, inline_streams = _derived_streams(home), _derived_streams(inline)
    assert sum(len(events) for events in ray_streams.values()) == derived
    assert ray_streams == inline_streams
    assert len(ray_streams["linked"]) == 30 and len(ray_streams["decay"]) == 30
    assert {kind for _, kind, _ in ray_streams["patterns"]} == {"pattern.learned"}
    embedder = Embedder(settings.embedder)
    with EventLog(home / "log", writable=False) as log:
        first = next(log.stream(EMBEDDED_STREAM).read())
        payload = log.open_payload(first)
        assert isinstance(payload, MemoryEmbedded)
        source = next(log.input.read(1, 1))
        expected = embedder.embed([dated(synthetic_text(0), source.occurred_at)])[0]
        assert np.allclose(payload.array(), expected, atol=1e-3)  # stored as half floats
    with Memory.open(home=home) as mem:  # the projections fold what the actors wrote
        assert mem.stats()["actors"]["embedder"]["lag"] == 0
        hits = mem.recall(synthetic_text(4), namespace="user-1", k=1)
        assert hits[0].text == synthetic_text(4)


def test_an_actor_killed_mid_batch_resumes_exactly_once(home: Path) -> None:
    n = 400
    _store(home, n)
    settings = load_settings(home=home)
    settings = settings.model_copy(
        update={"projections": settings.projections.model_copy(update={"actor_batch_size": 16})}
    )
    runner = RayRunner(home, settings)
    try:
        actor = runner.actors["embedder"]
        pid_before = runner.status()["embedder"]["pid"]
        pending = actor.step.remote(1000)
        with EventLog(home / "log", writable=False) as watcher:
            output = watcher.stream(EMBEDDED_STREAM)
            deadline = time.monotonic() + 60
            while output.refresh() < 32 and time.monotonic() < deadline:
                time.sleep(0.02)  # until some batches are committed and more are under way
        ray.kill(actor, no_restart=False)
        # Ray restarts the actor and retries the interrupted step on it; the step resumes
        # after the last upstream position the output stream records.
        read, _ = ray.get(pending)["embedder"]
        assert 0 < read < n
        runner.run_until_caught_up()
        assert runner.status()["embedder"]["pid"] != pid_before
    finally:
        runner.shutdown()
    _derived_once(home, n)


def test_actor_name_is_per_home(tmp_path: Path) -> None:
    assert actor_name("embedder", tmp_path / "a") != actor_name("embedder", tmp_path / "b")
    assert actor_name("embedder", tmp_path / "a").startswith("embedder@")


def test_what_ray_pickles_round_trips(home: Path) -> None:
    settings = load_settings(home=home)
    assert pickle.loads(pickle.dumps(DEFAULT_TOPOLOGY)) == DEFAULT_TOPOLOGY
    again = pickle.loads(pickle.dumps(settings.model_dump_json()))
    assert type(settings).model_validate_json(again) == settings
    _store(home, 2)
    service = FollowerService(str(home), settings.model_dump_json(), "embedder")
    assert service.step() == {"embedder": (2, 2)}
    assert service.status()["embedder"]["lag"] == 0


@pytest.mark.parametrize("layout", ["one", "per_lane"])
def test_the_lanes_run_in_one_worker_process_or_one_each(
    home: Path, layout: Literal["one", "per_lane"]
) -> None:
    """Two lanes: the embedder, and the four light actors (stepped in topology order, so one
    step carries a memory from the extractor to the consolidator). By default one Ray worker
    runs both, each lane on its own thread; `per_lane` gives each a worker process."""
    assert {lane: [n.name for n in nodes] for lane, nodes in DEFAULT_TOPOLOGY.lanes.items()} == {
        "derive": ["extractor", "linker", "consolidator", "decay", "patterns"],
        "embedder": ["embedder"],
    }
    _store(home, 5)
    settings = load_settings(home=home)
    settings = settings.model_copy(update={"ray": RaySettings(worker_processes=layout)})
    runner = RayRunner(home, settings)
    try:
        pids = {name: s["pid"] for name, s in runner.status().items()}
        assert pids["extractor"] == pids["linker"] == pids["consolidator"] == pids["decay"]
        assert len(set(pids.values())) == (1 if layout == "one" else 2)
        runner.run_until_caught_up()
        status = runner.status()
        assert {name: s["lag"] for name, s in status.items()} == dict.fromkeys(pids, 0)
        assert status["decay"]["processed"] == status["extractor"]["processed"] == 5
        assert status["embedder"]["processed"] == 5
    finally:
        runner.shutdown()


def test_a_failing_node_does_not_hold_up_the_others_in_its_process(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(home=home)
    _store(home, 4)
    service = FollowerService(str(home), settings.model_dump_json(), ["extractor", "decay"])
    extractor = service.followers["extractor"]

    def broken(batch: object) -> list[object]:
        raise RuntimeError("extractor broken")

    monkeypatch.setattr(extractor, "process", broken)
    with pytest.raises(RuntimeError, match="extractor broken"):
        service.step()
    assert service.done["decay"] == 4 and service.processed["decay"] == 4
    monkeypatch.undo()
    assert service.step() == {"extractor": (4, 4), "decay": (0, 0)}
    service.close()


def test_a_failed_step_logs_no_memory_text(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An actor's failure is logged by kind when its message may quote what it choked on
    (pydantic's input_value, a ValueError's words); the log's own errors keep theirs."""
    from pydantic import BaseModel
    from structlog.testing import capture_logs

    class Strict(BaseModel):
        count: int

    settings = load_settings(home=home)
    _store(home, 2)
    service = FollowerService(str(home), settings.model_dump_json(), ["extractor"])
    secret = "Zebramark likes the blue door code 4471"

    def choke(batch: object) -> list[object]:
        Strict(count=secret)  # type: ignore[arg-type]
        return []

    monkeypatch.setattr(service.followers["extractor"], "process", choke)
    with capture_logs() as logs, pytest.raises(ValueError):
        service.step()
    (failed,) = [e for e in logs if e["event"] == "actor.step_failed"]
    assert "Zebramark" not in str(failed) and failed["error"].startswith("ValidationError")


def test_loggable_keeps_only_messages_that_name_no_data() -> None:
    from mnemoflow.eventlog.errors import (
        KeyErased,
        NamespaceNotFound,
        StorageError,
        ValidationError,
        loggable,
    )

    assert loggable(StorageError("cannot write /x/seg.arrow: disk full")).endswith("disk full")
    assert loggable(OSError(28, "No space left on device")).endswith("No space left on device")
    for exc in (
        ValueError("could not parse 'my secret'"),
        ValidationError("metadata 'my secret' is not flat"),
        NamespaceNotFound("no namespace 'my secret' in this log"),
        KeyErased("key 'my secret#1' was destroyed"),
    ):
        assert "my secret" not in loggable(exc) and loggable(exc).startswith(type(exc).__name__)
