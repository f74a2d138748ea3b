"""Run by test_ray_runner in a child process: the Ray runner on a two-node local cluster.

The embedder actor is pinned to the second node (a custom resource only it has); the driver
stays on the head. Both see the same data directory, as nodes sharing storage would.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import ray
from ray.cluster_utils import Cluster

from mnemoflow.eventlog import EventLog, InputLog, StoreRequest
from mnemoflow.eventlog.schema import EMBEDDED_STREAM
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.service.ray_runner import RayRunner


def main(home: Path) -> None:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1, resources={"mnemo_worker": 1})
    ray.init(address=cluster.address, namespace="mnemo", log_to_driver=False)
    try:
        with EventLog(home / "log", writes={"input"}) as log:
            InputLog(log).store_many(
                [StoreRequest(f"memory {i} about cats", "n") for i in range(20)]
            )
        runner = RayRunner(
            home, load_settings(home=home), actor_options={"resources": {"mnemo_worker": 0.1}}
        )
        derived = runner.run_until_caught_up()
        status = runner.status()["embedder"]
        runner.shutdown()
        with EventLog(home / "log", writable=False) as log:
            sources = Counter(
                r.causation.position
                for r in log.stream(EMBEDDED_STREAM).read()
                if r.causation and r.kind == "memory.embedded"
            )
        print(
            json.dumps(
                {
                    "nodes": len([n for n in ray.nodes() if n["Alive"]]),
                    "driver_node": ray.get_runtime_context().get_node_id(),
                    "actor_node": status["node_id"],
                    "derived": derived,
                    "once": sorted(sources) == list(range(1, 21)) and set(sources.values()) == {1},
                }
            )
        )
    finally:
        ray.shutdown()
        cluster.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
