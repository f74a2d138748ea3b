"""The service: mnemoflow running for agents and jobs.

One process owns the data directory: it writes the input stream (every store, update,
forget, feedback and erase), runs the actors as named Ray actors (a local Ray, or an existing
cluster), and keeps the DuckDB and FAISS projections caught up with a pump thread that steps
the actors (bounded batches: backpressure) and folds what they wrote. Reads go to the
projections as they stand; `recall(min_position=...)` waits, bounded, until they reach that
position (read-your-writes).

A crash at any point loses nothing acknowledged: the input is durable before a store
returns, each actor resumes after the last upstream position its output records, and the
projections resume from the positions they committed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from mnemoflow.eventlog.errors import loggable
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.service.ray_runner import RayRunner
from mnemoflow.pipeline.service.rederive import ServiceRederivation

log = structlog.get_logger(__name__)


class Service:
    def __init__(
        self,
        settings: Settings,
        *,
        ray_address: str | None = None,
        poll_seconds: float = 0.02,
        idle_seconds: float = 1.0,
        max_batches: int = 4,
    ) -> None:
        """The pumps look for work every `poll_seconds`; when nothing was stored since their
        last round, and that round found nothing to do, they go to the actors and the log
        only every `idle_seconds` (an idle service then costs almost no CPU)."""
        self.memory = Memory(settings, actor="service", external_actors=True)
        self.settings = self.memory.settings  # with the current generation's (its model)
        self.ray_address = ray_address
        self.runner = RayRunner(settings.home, self.settings, address=ray_address)
        # Held by each pump's round; a re-derivation's switch holds both (nothing runs then).
        self.stepping = threading.Lock()
        self.projecting = threading.Lock()
        self.rederivation = ServiceRederivation(self)
        self.poll_seconds = poll_seconds
        self.idle_seconds = idle_seconds
        self._steps = _Idle(idle_seconds)
        self._folds = _Idle(idle_seconds)
        self.max_batches = max_batches
        self.started = time.time()
        self.pump_errors = 0
        self._stop = threading.Event()
        self._stepped = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Service:
        """Two pumps: one steps the actors, one folds what they wrote into the projections;
        running them side by side lets the projections catch up while the actors work."""
        self._threads = [
            threading.Thread(target=self._pump, args=(self._step,), name="mnemo-actors"),
            threading.Thread(target=self._pump, args=(self._project,), name="mnemo-project"),
        ]
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        log.info("service.started", home=str(self.settings.home))
        return self

    def _step(self) -> bool:
        if not self._steps.due(self.memory.log.input.last_position):
            return False
        with self.stepping:
            stepped = self.runner.step(self.max_batches)
        busy = any(read for read, _ in stepped.values())
        self._steps.done(busy)
        if busy:
            self._stepped.set()
        return busy

    def _project(self) -> bool:
        """Once per round of the actors (or every poll, for input alone): folding more often
        would only take CPU from them."""
        stepped = self._stepped.wait(self.poll_seconds * 10)
        self._stepped.clear()
        if stepped or self._folds.due(self.memory.log.input.last_position):
            with self.projecting:
                self.memory.runtime.project()
            self._folds.done(stepped)
        return True  # paced by the actors' rounds, not by a sleep

    def _pump(self, work: Callable[[], bool]) -> None:
        while not self._stop.is_set():
            try:
                busy = work()
            except Exception as exc:  # a pump must outlive one bad round; Ray retries actors
                self.pump_errors += 1
                log.error("service.pump_failed", error=loggable(exc))
                busy = False
            if not busy:
                self._stop.wait(self.poll_seconds)

    def status(self) -> dict[str, Any]:
        stats = self.memory.stats()
        stats["actors"] = self.runner.status()
        stats["service"] = {
            "uptime_s": round(time.time() - self.started, 1),
            "pump_errors": self.pump_errors,
        }
        return stats

    def switch_generation(self) -> None:
        """Take up the generation a re-derivation has just made current: the projections and
        the query model swap in one step, then the actors restart on the new streams with the
        new settings. The caller holds `stepping` and `projecting`: no pump runs meanwhile."""
        self.memory.adopt_generation()
        self.settings = self.memory.settings
        self.runner.shutdown()
        self.runner = RayRunner(self.settings.home, self.settings, address=self.ray_address)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self.rederivation.stop()
        self._stop.set()
        self._stepped.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self.runner.shutdown()
        self.memory.close()
        log.info("service.stopped")

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Idle:
    """Whether a pump's round is due: after a busy round, when the input moved on since the
    last one, or when `seconds` have passed (what other processes append: actors' output)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._busy = True
        self._position = -1
        self._at = 0.0

    def due(self, position: int) -> bool:
        if self._busy or position != self._position:
            self._position = position
            return True
        return time.monotonic() - self._at >= self.seconds

    def done(self, busy: bool) -> None:
        self._busy = busy
        self._at = time.monotonic()
