"""The service: the input written here, the actors on (the session's) Ray, pumps keeping the
projections caught up; read-your-writes by waiting, not by running actors inline."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import pytest
import ray

from mnemoflow import Memory
from mnemoflow.actors.llm import LLMSettings
from mnemoflow.eventlog import StoreRequest
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.errors import ProjectionLag
from mnemoflow.pipeline.ingest.job import ingest
from mnemoflow.pipeline.service.service import Service
from tests.actors.chat_server import LLM_ANSWER, ChatServer


@pytest.mark.usefixtures("ray_session")
def test_the_service_serves_what_was_stored(home: Path) -> None:
    with Service(load_settings(home=home)) as service:
        mem = service.memory
        first = mem.store("Alice: I adopted a cat named Miso.", namespace="alice")
        mem.store("Alice: I work at Initech as a designer.", namespace="alice")
        last = mem.store("Alice: I moved to Lisbon last spring.", namespace="alice")
        hits = mem.recall("What is the cat called?", "alice", k=1, min_position=last.position)
        assert hits[0].memory_id == first.memory_id
        status = service.status()
        actors = {"extractor", "embedder", "linker", "consolidator", "decay", "patterns"}
        assert set(status["actors"]) == actors
        assert status["actors"]["embedder"]["processed"] >= last.position
        assert status["service"]["pump_errors"] == 0
        # An actor killed mid-stream comes back (max_restarts) and recall keeps answering.
        ray.kill(service.runner.actors["embedder"], no_restart=False)
        later = mem.store("Alice: Miso likes to sleep on the piano.", namespace="alice")
        assert mem.recall("Miso", "alice", k=5)  # possibly stale, never an error
        hits = mem.recall("Where does Miso sleep?", "alice", k=1, min_position=later.position)
        assert hits[0].memory_id == later.memory_id


def test_read_your_writes_is_bounded(home: Path) -> None:
    """With nobody running the actors, recall(min_position=...) waits its timeout, then says
    so; without min_position it answers from what is there."""
    settings = load_settings(home=home)
    settings = settings.model_copy(
        update={"query": settings.query.model_copy(update={"wait_timeout": 0.3})}
    )
    with Memory(settings, external_actors=True) as mem:
        r = mem.store("Nobody embeds this.", namespace="n")
        began = time.monotonic()
        with pytest.raises(ProjectionLag, match=f"position {r.position}"):
            mem.recall("embeds", "n", k=1, min_position=r.position)
        assert 0.25 < time.monotonic() - began < 5
        assert mem.recall("embeds", "n", k=1) == []


@pytest.mark.usefixtures("ray_session")
def test_an_erase_reaches_the_actors_with_a_backlog_held_back(home: Path, chat: ChatServer) -> None:
    """The service's extractor (a Ray actor, with a local chat-completions server as its LLM)
    is held inside its first request while a backlog of the namespace waits behind it; the
    namespace is erased, then the model answers. After the erase returned, no erased text
    reaches the model and no event derived from an erased input is appended anywhere."""
    chat.answer = LLM_ANSWER
    asked, answer = threading.Event(), threading.Event()

    def hold(_: dict[str, object]) -> None:
        asked.set()
        answer.wait(120)

    chat.on_request = hold
    settings = load_settings(home=home)
    settings = settings.model_copy(update={"llm": LLMSettings(base_url=chat.url, model="tiny")})
    with Service(settings) as service:
        mem = service.memory
        mem.store("Quokkamark zero: Zed hid the key under the mat.", namespace="gone")
        assert asked.wait(120)  # the extractor has opened the first and waits for the model
        backlog = [
            StoreRequest(text=f"Quokkamark {i}: Zed's code is {4400 + i}.", namespace="gone")
            for i in range(12)
        ]
        mem.store_many(backlog)
        kept = mem.store("Amy drinks green tea every morning.", namespace="kept")
        mem.erase("gone")
        ends = {name: _last(mem, name) for name in mem.log.stream_names()}
        answer.set()
        deadline = time.monotonic() + 180
        while service.status()["actors"]["extractor"]["processed"] < kept.position:
            assert time.monotonic() < deadline, service.status()["actors"]
            time.sleep(0.2)
        assert mem.recall("What does Amy drink?", "kept", k=1, min_position=kept.position)
        late = {
            (name, r.position)
            for name in mem.log.stream_names()
            for r in mem.log.stream(name).read(ends.get(name, 0) + 1)
            if r.namespace == "gone"
        }
    assert late == set()
    sent = [r["messages"][-1]["content"] for r in chat.requests]
    assert "Quokkamark zero" in sent[0] and not any("Quokkamark" in s for s in sent[1:])
    assert any("green tea" in s for s in sent[1:])  # the other namespace went on


def _last(mem: Memory, name: str) -> int:
    stream = mem.log.stream(name)
    stream.refresh()
    return stream.last_position


@pytest.mark.usefixtures("ray_session")
def test_an_erased_namespace_leaves_no_fingerprint(home: Path, tmp_path: Path) -> None:
    """A marker namespace name, file name, texts and caller-chosen event ids, ingested,
    stored, updated and recalled through the service, then erased: a byte-level search of
    every file under the data directory and of Ray's session logs finds none of them, nor the
    texts' SHA-256 digests. The namespace's name sat in every envelope, the keyring, the vector
    manifest and the projections; the file's name and a digest of each text in the ingested
    events' ids; a caller's event id as given."""
    texts = ["Numbatext one: Zorvath parks at the Quillvane depot.", "Numbatext two: 9182."]
    source = tmp_path / "Numbatfile-notes.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    with Memory.open(home=home) as mem:  # ingestion embeds here (it is a batch job)
        ingest(mem, [source], "Numbatspace", progress=False)
    with Service(load_settings(home=home)) as service:
        mem = service.memory
        r = mem.store(
            "Numbatext three: Zorvath flies to Oslo.",
            "Numbatspace",
            {"k": "Numbatmeta"},
            event_id="Numbatevent-3",
        )
        mem.feedback(r.memory_id, True, event_id="Numbatevent-fb")
        last = mem.update(
            r.memory_id, "Numbatext four: Zorvath flies to Rome.", event_id="Numbatevent-4"
        )
        hits = mem.recall("Where does Zorvath fly?", "Numbatspace", k=3, min_position=last.position)
        assert hits and hits[0].namespace == "Numbatspace"
        kept = mem.store("Amy drinks green tea.", namespace="kept")
        mem.recall("tea", "kept", k=1, min_position=kept.position)
        mem.erase("Numbatspace")
        assert mem.verify().ok
    source.unlink()
    texts += ["Numbatext three: Zorvath flies to Oslo.", "Numbatext four: Zorvath flies to Rome."]
    needles = {b"Numbat", b"Zorvath", b"Quillvane"}
    for text in texts:
        digest = hashlib.sha256(text.encode()).hexdigest()
        needles |= {digest[:12].encode(), digest[:12].upper().encode(), bytes.fromhex(digest)}
    session = Path(ray._private.worker._global_node.get_session_dir_path())
    found = [
        (str(path), needle[:12])
        for root in (home, session)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
        for needle in needles
        if needle in path.read_bytes()
    ]
    assert found == []
    with Memory.open(home=home) as mem:  # and what is kept still reads and verifies
        assert mem.namespaces() == ["kept"]
        assert mem.recall("tea", "kept", k=1)[0].memory_id == kept.memory_id
