"""Recall as RPC for other Ray jobs, answered by the service's own actor worker.

The projections live in the service's process (DuckDB has one writer), so a recall is
forwarded to the service over loopback HTTP, with the token `mnemo serve` writes for this
data directory in `server.json`. The Ray worker that runs the actors answers it, on threads of
its own beside the actors' steps: a worker of its own would cost ~150 MB for no work. Another
driver on the same cluster finds the actor's name in `server.json`:

    actor = ray.get_actor(doc["query_actor"], namespace="mnemo")
    hits = ray.get(actor.recall.remote("where does Alice live?", "alice", 5))
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import ray

from pipeline.client import SERVER_FILE, RemoteMemory
from pipeline.errors import PipelineError


class QueryEndpoint:
    """Forwards recall to the server serving `home`, as `server.json` names it now (a
    restarted server has a new port and token: the file is read again when it changes).
    In a Ray actor its methods run in the "query" concurrency group, never queued behind
    the actor's other calls."""

    def __init__(self, home: Path) -> None:
        self._marker = home / SERVER_FILE
        self._lock = threading.Lock()
        self._seen: tuple[str, str] | None = None
        self._client: RemoteMemory | None = None

    def _remote(self) -> RemoteMemory:
        try:
            doc = json.loads(self._marker.read_text())
            seen = (str(doc["url"]), str(doc["token"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PipelineError(f"no server is serving {self._marker.parent}: {exc}") from exc
        with self._lock:
            if self._client is None or seen != self._seen:
                if self._client is not None:
                    self._client.close()
                self._client, self._seen = RemoteMemory(*seen), seen
            return self._client

    @ray.method(concurrency_group="query")
    def recall(
        self,
        query: str,
        namespace: str,
        k: int = 10,
        min_position: int | None = None,
        filters: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        hits = self._remote().recall(
            query, namespace, k, min_position=min_position, filters=filters
        )
        return [h.to_json() for h in hits]

    @ray.method(concurrency_group="query")
    def ping(self) -> str:
        return str(self._remote().health()["status"])
