"""Faults against the real service and the data directory: the whole service SIGKILLed
during an HTTP ingest, an actor killed while recall answers, damaged files of every kind,
and a full disk. Each is detected, and nothing acknowledged is lost."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from structlog.testing import capture_logs

from mnemoflow import Memory
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.client import RemoteMemory
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.bench.corpus import corpus
from mnemoflow.pipeline.bench.suite import served
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.httpserver import serving
from tests.pipeline.recovery import assert_recovered

TOTAL = 5000
BATCH = 50


def _caught_up(client: RemoteMemory, timeout: float = 300) -> dict[str, object]:
    """Waits until every actor and projection has caught up (three looks in a row)."""
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 3:
        assert time.monotonic() < deadline, "the service did not catch up"
        status = client.stats()
        actors = status["actors"].values()
        lags = status["projections"]["duckdb"]["lag"].values()
        calm = calm + 1 if all(a["lag"] == 0 for a in actors) and not any(lags) else 0
        time.sleep(0.3)
    return status


@pytest.mark.timeout(900)  # 5,000 memories derived twice over: ~130 s on 2 cores, more when shared
def test_sigkill_of_the_service_during_an_http_ingest(tmp_path: Path) -> None:
    """5,000 memories sent over HTTP in batches; the service (server, Ray, every actor) is
    SIGKILLed after a third of them are acknowledged. Restarted, it loses none of those, the
    actors and projections catch up exactly once, and re-sending the whole ingest (same
    event ids) completes it without a duplicate."""
    from mnemoflow.eventlog import StoreRequest

    home = tmp_path / "home"
    items = list(corpus(TOTAL, seed=21))
    requests = [
        StoreRequest(item.text, f"user-{i % 3}", {"row": i}, item.occurred_at, f"ingest-{i}")
        for i, item in enumerate(items)
    ]
    acked: set[str] = set()
    stop = threading.Event()

    def ingest(url: str) -> None:
        with RemoteMemory(url) as client:
            for at in range(0, TOTAL, BATCH):
                if stop.is_set():
                    return
                try:
                    receipts = client.store_many(requests[at : at + BATCH])
                except Exception:  # the kill: what was not acknowledged may be lost
                    return
                acked.update(r.memory_id or "" for r in receipts)

    with served(home) as (url, pid):
        sender = threading.Thread(target=ingest, args=(url,))
        sender.start()
        deadline = time.monotonic() + 180
        while len(acked) < TOTAL // 3:
            assert time.monotonic() < deadline and sender.is_alive(), "the ingest stalled"
            time.sleep(0.05)
        os.killpg(pid, signal.SIGKILL)  # mid-batch: the next store_many is in flight
        stop.set()
        sender.join(60)
    assert TOTAL // 3 <= len(acked) < TOTAL

    with served(home) as (url, _), RemoteMemory(url) as client:
        _caught_up(client)
        assert client.verify().ok
    assert_recovered(home, acked)

    with served(home) as (url, _), RemoteMemory(url) as client:
        for at in range(0, TOTAL, 500):  # the whole ingest again: only the missing part is new
            client.store_many(requests[at : at + 500])
        _caught_up(client)
        stats = client.stats()
        assert stats["memories"]["total"] == TOTAL
        assert stats["streams"]["input"]["events"] == TOTAL
    assert_recovered(home, acked)


STREAMS = ("input", "extracted", "embedded", "linked", "consolidated", "decay")


def _filled(home: Path) -> tuple[set[str], dict[str, str]]:
    """A home with events in every stream; the acknowledged ids and the checksums."""
    with Memory.open(home=home) as mem:
        receipts = [
            mem.store(item.text, f"user-{i % 2}", occurred_at=item.occurred_at)
            for i, item in enumerate(corpus(40, seed=9))
        ]
        mem.update(receipts[0].memory_id or "", "Nia moved to Lisbon in the spring.")
        mem.feedback(receipts[1].memory_id or "", useful=True)
        mem.sync()
        assert all(mem.stats()["streams"][name]["events"] for name in STREAMS)
        return {r.memory_id or "" for r in receipts}, mem.checksums()


def _segments(home: Path, stream: str) -> list[Path]:
    return sorted((home / "log" / "streams" / stream).glob("*.arrow"))


@pytest.mark.parametrize("stream", STREAMS)
def test_a_torn_tail_in_any_stream_is_cut_and_named(tmp_path: Path, stream: str) -> None:
    home = tmp_path / "home"
    acked, _ = _filled(home)
    last = _segments(home, stream)[-1]
    with last.open("ab") as f:  # half a record: what a crash mid-write leaves
        f.write(b"\xff\xff\xff\xff\x10\x01\x00\x00" + os.urandom(40))
    with capture_logs() as logs, Memory.open(home=home) as mem:
        mem.store("Omar fixed the bike.", "user-0")  # every stream appends again
        mem.sync()
        assert mem.verify().ok
    cut = [e for e in logs if e["event"] == "log.torn_tail_cut"]
    assert [e["segment"] for e in cut] == [str(last)]
    assert_recovered(home, acked)


def test_a_flipped_byte_in_a_sealed_segment_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(home=home)
    small = settings.log.model_copy(update={"segment_bytes": 16 * 1024})  # several sealed
    settings = settings.model_copy(update={"log": small})
    with Memory.open(settings=settings) as mem:
        for item in corpus(120, seed=4):
            mem.store(item.text, "user-0")
    sealed = _segments(home, "input")[0]
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 0x01
    sealed.write_bytes(bytes(data))
    with Memory.open(settings=settings) as mem:
        report = mem.verify()
    assert not report.ok and report.segment is not None
    assert Path(report.segment).name == sealed.name


@pytest.mark.parametrize("damage", ["delete", "truncate", "junk"])
def test_a_damaged_faiss_snapshot_is_rebuilt_from_the_log(tmp_path: Path, damage: str) -> None:
    home = tmp_path / "home"
    acked, checksums = _filled(home)
    snapshot = home / "projections" / "faiss"
    victim = max(
        (p for p in snapshot.iterdir() if p.suffix == ".npz"), key=lambda p: p.stat().st_size
    )
    if damage == "delete":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:100])
    else:
        victim.write_bytes(os.urandom(victim.stat().st_size))
    with capture_logs() as logs, Memory.open(home=home) as mem:
        assert mem.checksums() == checksums
        assert mem.recall("Lisbon", "user-0", 3)
    (damaged,) = [e for e in logs if e["event"] == "projections.faiss_snapshot_damaged"]
    assert victim.name in damaged["error"] or str(snapshot) in damaged["error"]
    assert_recovered(home, acked)


@pytest.mark.parametrize("damage", ["header", "truncate"])
def test_a_damaged_duckdb_file_is_rebuilt_from_the_log(tmp_path: Path, damage: str) -> None:
    home = tmp_path / "home"
    acked, checksums = _filled(home)
    duck = home / "projections" / "memories.duckdb"
    data = bytearray(duck.read_bytes())
    if damage == "header":
        data[:8192] = os.urandom(8192)
    else:
        data = data[: len(data) // 3]
    duck.write_bytes(bytes(data))
    with capture_logs() as logs, Memory.open(home=home) as mem:
        assert mem.checksums() == checksums
        assert {r.memory_id for r in mem.memories("user-0", limit=100)} <= acked | set()
    (damaged,) = [e for e in logs if e["event"] == "projections.duckdb_damaged"]
    assert damaged["file"] == str(duck)
    assert_recovered(home, acked)


def test_a_full_disk_refuses_stores_cleanly_and_the_service_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over real HTTP: while every write to the log fails with ENOSPC (half written first),
    stores get a JSON 503 and nothing is acknowledged or left half-written; reads go on; once
    space returns, stores succeed and the log verifies."""
    real_pwrite = os.pwrite

    def full_disk(fd: int, data: bytes, offset: int) -> int:
        real_pwrite(fd, bytes(data)[: len(data) // 2], offset)
        raise OSError(errno.ENOSPC, "No space left on device")

    with (
        Memory.open(home=tmp_path / "home") as mem,
        serving(create_app(mem, KeyStore(tmp_path / "keys.json"), open_access=True)) as url,
        RemoteMemory(url) as client,
    ):
        kept = client.store("Nia planted basil.", "nia")
        client.recall("basil", "nia", 1)  # derived and folded (inline: the recall syncs)
        monkeypatch.setattr("mnemoflow.eventlog.segments.os.pwrite", full_disk)
        for body in (
            ("/store", {"text": "Nia planted mint.", "namespace": "nia"}),
            ("/store_many", {"items": [{"text": "Nia sold a bike.", "namespace": "nia"}]}),
            ("/update", {"memory_id": kept.memory_id, "text": "Nia planted thyme."}),
            ("/memories/add", {"user_id": "nia", "text": "Nia hums."}),
        ):
            response = httpx.post(f"{url}{body[0]}", json=body[1])
            assert response.status_code == 503, response.text
            assert "No space left" in response.json()["detail"]
        # Reads go on: nothing acknowledged waits to be derived, so nothing must be written.
        assert [h.text for h in client.recall("basil", "nia", 1)] == ["Nia planted basil."]
        assert mem.log.input.last_position == kept.position
        monkeypatch.setattr("mnemoflow.eventlog.segments.os.pwrite", real_pwrite)
        after = client.store("Nia planted mint.", "nia")
        assert after.position == kept.position + 1
        hits = client.recall("mint", "nia", 2, min_position=after.position)
        assert hits[0].memory_id == after.memory_id
        assert client.verify().ok
    assert_recovered(tmp_path / "home", {kept.memory_id or "", after.memory_id or ""})


@pytest.mark.usefixtures("ray_session")
def test_an_actor_killed_mid_stream_while_recall_answers(tmp_path: Path) -> None:
    """The service with its Ray actors, over real HTTP: the embedder is killed while stores
    arrive and a client keeps recalling. Ray restarts it, it resumes where its output says it
    stopped (each memory embedded once), and no recall fails meanwhile."""
    import ray

    from mnemoflow.pipeline.service.service import Service

    errors: list[str] = []
    answered = 0
    stop = threading.Event()
    settings = load_settings(home=tmp_path / "home")
    patient = settings.query.model_copy(update={"wait_timeout": 120.0})  # a restart, 2 cores
    with (
        Service(settings.model_copy(update={"query": patient})) as service,
        serving(
            create_app(
                service.memory,
                KeyStore(tmp_path / "keys.json"),
                open_access=True,
                status=service.status,
            )
        ) as url,
        RemoteMemory(url) as client,
    ):
        first = client.store("Omar keeps bees on the roof.", "omar")
        client.recall("bees", "omar", 3, min_position=first.position)

        def recalling() -> None:
            nonlocal answered
            with RemoteMemory(url) as reader:
                while not stop.is_set():
                    try:
                        reader.recall("Who keeps bees?", "omar", 3)
                        answered += 1
                    except Exception as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    stop.wait(0.05)  # an agent between two turns

        reader = threading.Thread(target=recalling)
        reader.start()
        acked = {first.memory_id or ""}
        try:
            for i, item in enumerate(corpus(60, seed=2)):
                acked.add(client.store(item.text, "omar").memory_id or "")
                if i == 20:
                    ray.kill(service.runner.actors["embedder"], no_restart=False)
            last = client.store("Omar sold the honey at the market.", "omar")
            acked.add(last.memory_id or "")
            hits = client.recall("Where was the honey sold?", "omar", 3, min_position=last.position)
            assert hits[0].memory_id == last.memory_id
        finally:
            stop.set()
            reader.join(30)
        assert errors == [] and answered > 0
        _caught_up(client)
    assert_recovered(tmp_path / "home", acked)


def test_a_duckdb_file_another_process_holds_is_refused_not_rebuilt(tmp_path: Path) -> None:
    """A lock held by another process is not damage: the open fails, the file stays."""
    import subprocess
    import sys

    from mnemoflow.projections.errors import ProjectionError
    from mnemoflow.projections.projector import _open_duck

    home = tmp_path / "home"
    _filled(home)
    duck = home / "projections" / "memories.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(duck)!r}); "
            "print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        size = duck.stat().st_size
        with pytest.raises(ProjectionError, match="Could not set lock"):
            _open_duck(home / "projections")
        assert duck.stat().st_size == size
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
