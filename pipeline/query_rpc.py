"""Recall as RPC for other Ray jobs: a named actor `query@<data dir hash>` in the `mnemo`
namespace.

The projections live in the service's process (DuckDB has one writer), so the actor asks the
service over loopback HTTP with the service's own admin token and returns plain dicts (the
hits' JSON). Another driver on the same cluster:

    actor = ray.get_actor(query_actor_name(home), namespace="mnemo")
    hits = ray.get(actor.recall.remote("where does Alice live?", "alice", 5))
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import ray

from pipeline.client import RemoteMemory
from pipeline.raynames import RAY_NAMESPACE, actor_name


def query_actor_name(home: Path) -> str:
    return actor_name("query", home)


class QueryService:
    def __init__(self, url: str, token: str) -> None:
        self._client = RemoteMemory(url, token)

    def recall(
        self,
        query: str,
        namespace: str,
        k: int = 10,
        min_position: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        hits = self._client.recall(query, namespace, k, min_position=min_position, filters=filters)
        return [h.to_json() for h in hits]

    def ping(self) -> str:
        return str(self._client.health()["status"])


RemoteQuery: Any = ray.remote(num_cpus=0)(QueryService)


def start_query_actor(home: Path, url: str, token: str) -> Any:
    """The named query actor for this data directory (replacing one left from before)."""
    name = query_actor_name(home)
    with contextlib.suppress(ValueError):  # none left from before
        ray.kill(ray.get_actor(name, namespace=RAY_NAMESPACE))
    return RemoteQuery.options(name=name, namespace=RAY_NAMESPACE, max_restarts=3).remote(
        url, token
    )
