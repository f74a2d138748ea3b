"""The service: the input written here, the actors on (the session's) Ray, pumps keeping the
projections caught up; read-your-writes by waiting, not by running actors inline."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray

from pipeline import Memory
from pipeline.config import load_settings
from pipeline.errors import ProjectionLag
from pipeline.service import Service


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
        assert set(status["actors"]) == {"extractor", "embedder", "linker", "consolidator", "decay"}
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
