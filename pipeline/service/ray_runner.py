"""The Ray runner: the topology's nodes in named Ray actors of the `mnemo` namespace: one
worker process for them all (each lane on a thread), or one per lane (`[ray]
worker_processes`).

An actor opens the log itself (read-only, writing only its nodes' output streams), so it can
run on any node that sees the data directory. Each `step` processes at most `max_batches`
batches per node (backpressure), and each node resumes from the highest upstream position its
output records, so a restarted actor (Ray restarts it, `max_restarts`) neither loses nor
repeats an event.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ray
import structlog

from mnemoflow.actors.follower import close_followers
from mnemoflow.actors.inline import LogHistory, resume_position, run_follower
from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog.errors import loggable
from mnemoflow.pipeline.api.config import RaySettings, Settings
from mnemoflow.pipeline.api.logsetup import configure_logging
from mnemoflow.pipeline.api.topology import DEFAULT_TOPOLOGY, Node, Topology, lanes_of
from mnemoflow.pipeline.service.query_rpc import QueryEndpoint
from mnemoflow.pipeline.service.raynames import RAY_NAMESPACE, actor_name

log = structlog.get_logger(__name__)


class FollowerService(QueryEndpoint):
    """Topology nodes in one worker process (wrapped by `ray.remote` below). Each lane is
    stepped on a thread of its own, its nodes in topology order: one round carries a memory
    from the extractor through the linker while the embedder embeds the next ones. It also
    answers recall for other Ray jobs (`QueryEndpoint`, on threads beside the steps)."""

    def __init__(
        self,
        home: str,
        settings_json: str,
        node_names: str | Sequence[str],
        topology: Topology = DEFAULT_TOPOLOGY,
    ) -> None:
        self.settings = Settings.model_validate_json(settings_json)
        configure_logging(self.settings.logging)
        names = [node_names] if isinstance(node_names, str) else list(node_names)
        nodes = [topology.node(name) for name in names]
        self.log = EventLog(
            Path(home) / "log", self.settings.log, writable=False, writes={n.output for n in nodes}
        )
        history = LogHistory(self.log)
        self.followers = {n.name: n.make(self.settings, history) for n in nodes}
        self.lanes = [[n.name for n in lane] for lane in lanes_of(nodes).values()]
        self._threads = ThreadPoolExecutor(len(self.lanes), thread_name_prefix="lane")
        QueryEndpoint.__init__(self, Path(home))
        self.started = time.time()
        self.processed = dict.fromkeys(self.followers, 0)
        # upstream position each node processed through, once known
        self.done: dict[str, int | None] = dict.fromkeys(self.followers)
        self.pid = os.getpid()

    def step(self, max_batches: int = 8) -> dict[str, tuple[int, int]]:
        """Events read and derived per node. A node that fails does not hold up the others
        in its process (the decay actor does not wait on the extractor): each is stepped,
        then the first failure is raised."""
        lanes = [self._threads.submit(self._step_lane, lane, max_batches) for lane in self.lanes]
        out: dict[str, tuple[int, int]] = {}
        failures: list[Exception] = []
        for lane in lanes:
            stepped, failed = lane.result()
            out |= stepped
            failures += failed
        if failures:
            raise failures[0]
        return out

    def _step_lane(
        self, names: list[str], max_batches: int
    ) -> tuple[dict[str, tuple[int, int]], list[Exception]]:
        out = {}
        failures: list[Exception] = []
        for name in names:
            try:
                step = run_follower(
                    self.log,
                    self.followers[name],
                    max_batches=max_batches,
                    batch_size=self.settings.projections.actor_batch_size,
                    start_after=self.done[name],
                )
            except Exception as exc:
                log.error("actor.step_failed", actor=name, error=loggable(exc))
                failures.append(exc)
                continue
            self.done[name] = step.position
            self.processed[name] += step.read
            out[name] = (step.read, step.derived)
        return out, failures

    def close(self) -> None:
        """Release the log (and the output streams' writer locks) and what the actors hold
        (an LLM client's connections) before the process goes."""
        self._threads.shutdown()
        try:
            close_followers(self.followers.values())
        finally:
            self.log.close()

    def status(self) -> dict[str, dict[str, Any]]:
        elapsed = max(time.time() - self.started, 1e-9)
        out = {}
        for name, follower in self.followers.items():
            upstream = self.log.stream(follower.upstream)
            upstream.refresh()
            done = self.done[name]
            if done is None:
                done = resume_position(self.log, follower)
            out[name] = {
                "actor": follower.name,
                "pid": self.pid,
                "processed": done,
                "node_id": ray.get_runtime_context().get_node_id(),
                "lag": upstream.last_position - done,
                "events_per_s": round(self.processed[name] / elapsed, 1),
            }
        return out


# Recall for other jobs runs on two threads of its own, beside the steps (Ray's stubs do not
# know the `concurrency_groups` argument, and `.options()` refuses it).
RemoteFollower: Any = ray.remote(concurrency_groups={"query": 2})(  # type: ignore[call-overload]
    FollowerService
)


def init_ray(address: str | None = None) -> None:
    """Join the cluster at `address` (or RAY_ADDRESS), or start a local one; once per process."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(
            address=address, namespace=RAY_NAMESPACE, include_dashboard=False, log_to_driver=False
        )
        return
    ray.init(
        namespace=RAY_NAMESPACE,
        include_dashboard=False,
        log_to_driver=False,
        # A local Ray starts an idle worker per CPU for its first driver, in case it runs
        # tasks; this one runs none (its actor's worker is started for it), and each idle
        # worker holds ~80 MB.
        _system_config={"prestart_worker_first_driver": False},
    )


def worker_processes(topology: Topology, settings: RaySettings) -> dict[str, tuple[Node, ...]]:
    """The nodes each Ray worker process runs, by the process's name."""
    if settings.worker_processes == "one":
        return {"followers": topology.nodes}
    return topology.lanes


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
        self.home = home
        self.topology = topology
        # Actor handles are dynamic (methods are called with .remote), so typed as Any.
        layout = worker_processes(topology, settings.ray)
        self.processes: dict[str, Any] = {
            process: RemoteFollower.options(
                name=actor_name(process, home),
                namespace=RAY_NAMESPACE,
                get_if_exists=True,
                max_restarts=max_restarts,
                max_task_retries=max_restarts,
                lifetime="detached" if address else None,
                **({"num_cpus": sum(n.num_cpus for n in nodes)} | (actor_options or {})),
            ).remote(str(home), settings.model_dump_json(), [n.name for n in nodes], topology)
            for process, nodes in layout.items()
        }
        # The actor other Ray jobs call for recall (every worker answers; this one is named).
        self.query_actor = actor_name(next(iter(layout)), home)
        # Each node's actor (nodes of one process share it).
        self.actors: dict[str, Any] = {
            node.name: self.processes[process]
            for process, nodes in layout.items()
            for node in nodes
        }

    def _each(self, method: str, *args: Any) -> dict[str, Any]:
        """A method called on every process at once; the per-node answers merged."""
        calls = [getattr(a, method).remote(*args) for a in self.processes.values()]
        return {name: value for answer in ray.get(calls) for name, value in answer.items()}

    def step(self, max_batches: int = 8) -> dict[str, tuple[int, int]]:
        return self._each("step", max_batches)

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
        return self._each("status")

    def shutdown(self) -> None:
        """Close every actor's log, so its stream's writer lock is free at once, then kill it."""
        try:
            ray.get([a.close.remote() for a in self.processes.values()], timeout=60)
        except (ray.exceptions.RayError, TimeoutError) as exc:
            log.warning("runner.close_failed", error=loggable(exc))
        for actor in self.processes.values():
            ray.kill(actor, no_restart=True)
        names = [actor_name(process, self.home) for process in self.processes]
        self.processes.clear()
        self.actors.clear()
        deadline = time.monotonic() + 15  # a runner started next takes the same names
        for name in names:
            while time.monotonic() < deadline:
                try:
                    ray.get_actor(name, namespace=RAY_NAMESPACE)
                except ValueError:
                    break
                time.sleep(0.05)
