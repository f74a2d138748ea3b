"""`mnemo serve`: the service (Ray actors, pumps) behind the HTTP API, under uvicorn.

It binds to loopback unless told otherwise, and writes `server.json` (0600) in the data
directory — its URL, process id and an admin token for this directory's own CLI — so that
one-shot `mnemo` commands on the same directory go through it rather than fight it for the
log. The file goes when the server stops.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
from pathlib import Path

import ray
import structlog
import uvicorn

from mnemoflow.eventlog.atomic import write_atomic
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.client import SERVER_FILE
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.errors import PipelineError
from mnemoflow.pipeline.http.app import create_app
from mnemoflow.pipeline.http.hostguard import is_loopback
from mnemoflow.pipeline.service.service import Service

log = structlog.get_logger(__name__)


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound and listening: connections queue from now on, before uvicorn takes it."""
    # IPPROTO_TCP named, not left 0: asyncio sets TCP_NODELAY only on sockets that say they
    # are TCP. Without it a keep-alive client waits ~40 ms (Nagle against delayed ACKs) for
    # the body of every response after its headers.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise PipelineError(f"cannot listen on {host}:{port}: {exc}") from exc
    sock.listen(2048)
    return sock


def serve(
    settings: Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    ray_address: str | None = None,
    open_access: bool = False,
) -> None:
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    if open_access and not is_loopback(host):
        raise PipelineError("--open serves without keys, so only on a loopback address")
    sock = listening_socket(host, port)
    bound = sock.getsockname()[1]
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound}"
    service = Service(settings, ray_address=ray_address).start()
    token = secrets.token_urlsafe(32)
    app = create_app(
        service.memory,
        KeyStore(settings.home / "keys.json"),
        settings.server,
        open_access=open_access,
        status=service.status,
        local_token=token,
        rederiving=service.rederivation,
    )
    marker = settings.home / SERVER_FILE
    _write_private(
        marker,
        {
            "url": url,
            "pid": os.getpid(),
            "token": token,
            "ray_address": ray.get_runtime_context().gcs_address,
            "query_actor": service.runner.query_actor,  # recall for other Ray jobs
        },
    )
    print(f"mnemo serving {settings.home} on {url}", flush=True)
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off")).run(sockets=[sock])
    except SystemExit as exc:
        # uvicorn stops gracefully on SIGTERM/SIGINT, then re-raises the signal, which Ray's
        # handler turns into an exit with its number: that is the normal way to stop.
        if exc.code not in (signal.SIGTERM, signal.SIGINT):
            raise
    finally:
        marker.unlink(missing_ok=True)
        service.stop()


def _write_private(path: Path, doc: dict[str, object]) -> None:
    write_atomic(path, json.dumps(doc).encode(), mode=0o600)
