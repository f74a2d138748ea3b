"""Recall as RPC for other Ray jobs, answered by the service's own actor worker.

The projections live in the service's process (DuckDB has one writer), so a recall is
forwarded to the service over loopback HTTP. It goes with the caller's API key, never the
server's own token: a Ray job reaches exactly the namespaces its key may read over HTTP (the
actor's name is in `server.json` for anyone on the cluster to find, so the name is no
secret). The Ray worker that runs the actors answers, on threads of its own beside the
actors' steps: a worker of its own would cost ~150 MB for no work.

    actor = ray.get_actor(doc["query_actor"], namespace="mnemo")
    hits = ray.get(actor.recall.remote("where does Alice live?", "alice", 5, api_key=KEY))
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import ray

from mnemoflow.pipeline.api.client import SERVER_FILE, RemoteMemory
from mnemoflow.pipeline.api.errors import PipelineError

CLIENTS = 32  # connections kept open, one per key recently seen


class QueryEndpoint:
    """Forwards recall to the server serving `home`, at the address `server.json` names now
    (a restarted server has a new port: the file is read on every call), with the key the
    caller gave (`None` only reaches a server started `--open`). In a Ray actor its methods
    run in the "query" concurrency group, never queued behind the actor's other calls."""

    def __init__(self, home: Path) -> None:
        self._marker = home / SERVER_FILE
        self._lock = threading.Lock()
        # (url, digest of the key) -> client; the key itself is held by its client alone
        self._clients: OrderedDict[tuple[str, str], RemoteMemory] = OrderedDict()

    def _url(self) -> str:
        try:
            return str(json.loads(self._marker.read_text())["url"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PipelineError(f"no server is serving {self._marker.parent}: {exc}") from exc

    def _remote(self, api_key: str | None) -> RemoteMemory:
        url = self._url()
        slot = (url, hashlib.sha256((api_key or "").encode()).hexdigest())
        with self._lock:
            client = self._clients.get(slot)
            if client is None:
                client = self._clients[slot] = RemoteMemory(url, api_key)
                while len(self._clients) > CLIENTS:
                    self._clients.popitem(last=False)[1].close()
            self._clients.move_to_end(slot)
            return client

    @ray.method(concurrency_group="query")
    def recall(
        self,
        query: str,
        namespace: str,
        k: int = 10,
        min_position: int | None = None,
        filters: dict[str, Any] | None = None,
        *,
        api_key: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recall as `POST /recall` with `api_key` would: the key's scope is checked by the
        server (`AccessDenied` when it may not read `namespace`)."""
        hits = self._remote(api_key).recall(
            query, namespace, k, min_position=min_position, filters=filters
        )
        return [h.to_json() for h in hits]

    @ray.method(concurrency_group="query")
    def ping(self) -> str:
        return str(self._remote(None).health()["status"])
