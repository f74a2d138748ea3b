"""The HTTP API: FastAPI over a `Memory` (the service's, in `mnemo serve`).

Every route needs an API key (`Authorization: Bearer …` or `X-API-Key`) unless the server was
started `--open` on loopback, and may only touch the key's namespaces: a missing or unknown
key is 401, a namespace outside the key 403, too many requests 429, a body over the limit
413. Every error is JSON (`{"error": kind, "detail": words}`) and a refused call changes
nothing. Routes are plain functions, run on FastAPI's thread pool; they live by family in
`routes/`, who may call them in `guard`, the Prometheus metrics in `metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mnemoflow.eventlog.errors import (
    EpisodeClosed,
    KeyErased,
    MemoryGone,
    MemoryIdTaken,
    MemoryNotFound,
    MnemoError,
    NamespaceNotFound,
    StorageError,
    ValidationError,
)
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.errors import ProjectionLag
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.server_settings import ServerSettings
from mnemoflow.pipeline.http.guard import BodyLimit, Guard, HttpError
from mnemoflow.pipeline.http.hostguard import HostCheck
from mnemoflow.pipeline.http.metrics import Metrics
from mnemoflow.pipeline.http.models import ErrorOut
from mnemoflow.pipeline.http.routes import (
    episodes,
    guards,
    mem0,
    patterns,
    reads,
    service,
    transfer,
    writes,
)
from mnemoflow.pipeline.http.routes.service import Rederiving
from mnemoflow.pipeline.http.ui.pages import add_ui

ERRORS = {401: "no or unknown API key", 403: "outside the key's namespaces"}
STATUS = {
    ValidationError: 400,
    NamespaceNotFound: 404,
    MemoryNotFound: 404,
    MemoryGone: 410,
    MemoryIdTaken: 409,
    EpisodeClosed: 409,
    KeyErased: 410,
    ProjectionLag: 503,
    StorageError: 503,  # the disk (full, failing): nothing was acknowledged, retry later
}
RESPONSES = {
    400: "the request is invalid; nothing changed",
    401: ERRORS[401],
    403: ERRORS[403],
    404: "no such namespace or memory",
    413: "the body is too large",
    422: "the body does not match the schema",
    429: "too many requests for this key",
}


def create_app(
    memory: Memory,
    keys: KeyStore,
    settings: ServerSettings | None = None,
    *,
    open_access: bool = False,
    status: Callable[[], dict[str, Any]] | None = None,
    local_token: str | None = None,
    rederiving: Rederiving | None = None,
) -> FastAPI:
    """The API over `memory`. `local_token` is an admin key for this data directory's own
    CLI (written, 0600, beside the data); `status` replaces `memory.stats` for /stats and
    the pipeline's metrics (the service's sees its actors in Ray)."""
    s = settings or ServerSettings()
    app = FastAPI(
        title="mnemoflow",
        version="0.1.0",
        description="Long-term memory for AI agents: store, recall, audit.",
        responses={c: {"model": ErrorOut, "description": t} for c, t in RESPONSES.items()},
    )
    app.add_middleware(BodyLimit, limit=s.max_body_bytes)
    # Added last, so it runs first: an untrusted Host reaches nothing, not even the body limit.
    app.add_middleware(HostCheck, allowed=() if open_access else s.allowed_hosts or None)

    guard = Guard(memory, keys, s, open_access=open_access, local_token=local_token)
    status = status or memory.stats
    metrics = Metrics(status)
    metrics.install(app)
    _handle_errors(app)
    writes.add_routes(app, memory, guard)
    reads.add_routes(app, memory, guard, metrics)
    mem0.add_routes(app, memory, guard, metrics)
    service.add_routes(app, memory, guard, metrics, status, rederiving)
    transfer.add_routes(app, memory, guard)
    episodes.add_routes(app, memory, guard)
    guards.add_routes(app, memory, guard)
    patterns.add_routes(app, memory, guard)
    add_ui(app, memory, guard)
    return app


def _handle_errors(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def http_error(request: Request, exc: HttpError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = ErrorOut(error=exc.kind, detail=exc.detail).model_dump()
        return JSONResponse(body, status_code=exc.status, headers=headers)

    @app.exception_handler(MnemoError)
    async def mnemo_error(request: Request, exc: MnemoError) -> JSONResponse:
        code = next((c for kind, c in STATUS.items() if isinstance(exc, kind)), 400)
        body = ErrorOut(error=type(exc).__name__, detail=str(exc)).model_dump()
        return JSONResponse(body, status_code=code)

    @app.exception_handler(StarletteHTTPException)
    async def framework_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """The framework's own refusals (a body that is not UTF-8 or not JSON at all, an
        unknown route, a wrong method) in the same JSON shape as every other error."""
        kind = {404: "NotFound", 405: "MethodNotAllowed"}.get(exc.status_code, "BadRequest")
        body = ErrorOut(error=kind, detail=str(exc.detail)).model_dump()
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(p) for p in first.get("loc", ()))
        body = ErrorOut(error="RequestValidationError", detail=f"{where}: {first['msg']}")
        return JSONResponse(body.model_dump(), status_code=422)
