"""`mnemo rederive` while `mnemo serve` runs: the new generation is written on a thread of the
service, beside its actors, while it goes on storing and answering from the current one; when
the new generation has caught up, the service switches to it in one step (see
`Service.switch_generation`). A service stopped meanwhile leaves the re-derivation pending:
running it again (with the same settings) resumes it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import structlog

from mnemoflow.eventlog.errors import ValidationError, loggable
from mnemoflow.pipeline.api.derivation import Rederivation, begin, drop_old_generations

if TYPE_CHECKING:
    from mnemoflow.pipeline.service.service import Service

log = structlog.get_logger(__name__)


class ServiceRederivation:
    def __init__(self, service: Service) -> None:
        self._service = service
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.state: dict[str, Any] = {"state": "idle"}

    def start(
        self, actor: str, overrides: dict[str, Any], *, drop_old: bool = False
    ) -> dict[str, Any]:
        """Begin (or resume) re-deriving `actor` with `overrides`; returns its state."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise ValidationError(
                    f"generation {self.state.get('generation')} is being derived already"
                )
            layout = begin(self._service.settings, actor, overrides)
            assert layout.pending is not None
            self.state = {
                "state": "running",
                "generation": layout.pending.generation,
                "actor": actor,
            }
            self._thread = threading.Thread(
                target=self._run, args=(layout, drop_old), name="mnemo-rederive", daemon=True
            )
            self._thread.start()
            return dict(self.state)

    def status(self) -> dict[str, Any]:
        return dict(self.state)

    def _run(self, layout: Any, drop_old: bool) -> None:
        service = self._service
        try:
            work = Rederivation(service.settings, layout)
            try:
                batch = service.settings.projections.actor_batch_size
                # Until a round finds less than a batch for each actor: stores go on arriving,
                # so "nothing left" may never come.
                while not self._stop.is_set() and work.round() >= batch:
                    self.state |= work.progress()
                if self._stop.is_set():
                    self.state |= {"state": "stopped"}
                    return
                with service.stepping, service.projecting:  # the pumps held: the events up
                    last = service.memory.log.input.last_position  # to now, then the switch;
                    while work.round(stop=last):  # later ones the restarted actors derive
                        pass
                    self.state |= work.progress()
                    work.switch()
                    service.switch_generation()
            finally:
                work.close()
            dropped = drop_old_generations(service.settings) if drop_old else ()
            self.state |= {"state": "switched", "dropped": list(dropped)}
            log.info("service.generation_switched", generation=layout.pending.generation)
        except Exception as exc:  # reported to whoever asks; the pending generation stays
            self.state |= {"state": "failed", "error": loggable(exc)}
            log.error("service.rederive_failed", error=loggable(exc))

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=120)
