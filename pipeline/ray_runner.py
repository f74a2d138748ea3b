"""The Ray runner: each node of the topology as a named actor in the `mnemo` namespace.

An actor opens the log itself (read-only, writing only its output stream), so it can run on
any node that sees the data directory. Each `step` processes at most `max_batches` batches
(backpressure), and resumes from the highest upstream position its output records, so a
restarted actor (Ray restarts it, `max_restarts`) neither loses nor repeats an event.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import ray
import structlog

from eventlog import EventLog
from pipeline.config import Settings
from pipeline.inline import LogHistory, resume_position, run_follower
from pipeline.logsetup import configure_logging
from pipeline.topology import DEFAULT_TOPOLOGY, Topology

RAY_NAMESPACE = "mnemo"
log = structlog.get_logger(__name__)


def actor_name(node: str, home: Path) -> str:
    """Unique per data directory: one cluster may serve several."""
    digest = hashlib.sha1(str(home.resolve()).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{node}@{digest}"


class FollowerService:
    """One topology node in a worker process (wrapped by `ray.remote` below)."""

    def __init__(
        self, home: str, settings_json: str, node_name: str, topology: Topology = DEFAULT_TOPOLOGY
    ) -> None:
        self.settings = Settings.model_validate_json(settings_json)
        configure_logging(self.settings.logging)
        node = topology.node(node_name)
        self.log = EventLog(
            Path(home) / "log", self.settings.log, writable=False, writes={node.output}
        )
        self.follower = node.make(self.settings, LogHistory(self.log))
        self.started = time.time()
        self.processed = 0
        self.done: int | None = None  # upstream position processed through, once known
        self.pid = os.getpid()

    def step(self, max_batches: int = 8) -> tuple[int, int]:
        step = run_follower(
            self.log,
            self.follower,
            max_batches=max_batches,
            batch_size=self.settings.projections.actor_batch_size,
            start_after=self.done,
        )
        self.done = step.position
        self.processed += step.read
        return step.read, step.derived

    def close(self) -> None:
        """Release the log (and the output stream's writer lock) before the process goes."""
        self.log.close()

    def status(self) -> dict[str, Any]:
        upstream = self.log.stream(self.follower.upstream)
        upstream.refresh()
        done = resume_position(self.log, self.follower) if self.done is None else self.done
        elapsed = max(time.time() - self.started, 1e-9)
        return {
            "actor": self.follower.name,
            "pid": self.pid,
            "processed": done,
            "node_id": ray.get_runtime_context().get_node_id(),
            "lag": upstream.last_position - done,
            "events_per_s": round(self.processed / elapsed, 1),
        }


RemoteFollower: Any = ray.remote(FollowerService)


def init_ray(address: str | None = None) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), or start a local one; once per process."""
    if not ray.is_initialized():
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS"),
            namespace=RAY_NAMESPACE,
            include_dashboard=False,
            log_to_driver=False,
        )


class RayRunner:
    """Starts (or finds) the topology's actors and drives them."""

    def __init__(
        self,
        home: Path,
        settings: Settings,
        *,
        address: str | None = None,
        topology: Topology = DEFAULT_TOPOLOGY,
        max_restarts: int = 5,
        actor_options: dict[str, Any] | None = None,
    ) -> None:
        """`actor_options` go to every actor's `.options()` (resources, num_cpus, ...)."""
        init_ray(address)
        self.topology = topology
        # Actor handles are dynamic (methods are called with .remote), so typed as Any.
        self.actors: dict[str, Any] = {
            node.name: RemoteFollower.options(
                name=actor_name(node.name, home),
                namespace=RAY_NAMESPACE,
                get_if_exists=True,
                max_restarts=max_restarts,
                max_task_retries=max_restarts,
                lifetime="detached" if address else None,
                **({"num_cpus": node.num_cpus} | (actor_options or {})),
            ).remote(str(home), settings.model_dump_json(), node.name, topology)
            for node in topology.nodes
        }

    def step(self, max_batches: int = 8) -> dict[str, tuple[int, int]]:
        results = ray.get([a.step.remote(max_batches) for a in self.actors.values()])
        return dict(zip(self.actors, results, strict=True))

    def run_until_caught_up(self, timeout: float = 120.0) -> int:
        """Step every actor until none has anything left; returns the events derived."""
        deadline = time.monotonic() + timeout
        derived = 0
        while time.monotonic() < deadline:
            results = self.step()
            derived += sum(d for _, d in results.values())
            if all(read == 0 for read, _ in results.values()):
                return derived
        raise TimeoutError(f"actors not caught up after {timeout} s")

    def status(self) -> dict[str, dict[str, Any]]:
        return dict(
            zip(
                self.actors, ray.get([a.status.remote() for a in self.actors.values()]), strict=True
            )
        )

    def shutdown(self) -> None:
        """Close every actor's log, so its stream's writer lock is free at once, then kill it."""
        try:
            ray.get([a.close.remote() for a in self.actors.values()], timeout=60)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            log.warning("runner.close_failed", error=str(exc))
        for actor in self.actors.values():
            ray.kill(actor, no_restart=True)
        self.actors.clear()
