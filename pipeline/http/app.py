"""The HTTP API: FastAPI over a `Memory` (the service's, in `mnemo serve`).

Every route needs an API key (`Authorization: Bearer …` or `X-API-Key`) unless the server was
started `--open` on loopback, and may only touch the key's namespaces: a missing or unknown
key is 401, a namespace outside the key 403, too many requests 429, a body over the limit
413. Every error is JSON (`{"error": kind, "detail": words}`) and a refused call changes
nothing. Routes are plain functions, run on FastAPI's thread pool.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnemoflow.eventlog import StoreRequest
from mnemoflow.eventlog.errors import (
    KeyErased,
    MemoryGone,
    MemoryNotFound,
    MnemoError,
    NamespaceNotFound,
    StorageError,
    ValidationError,
)
from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.pipeline.api.errors import ProjectionLag
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.server_settings import ServerSettings
from mnemoflow.pipeline.api.wire import receipt_json, report_json, row_json
from mnemoflow.pipeline.http.apikeys import ApiKey, KeyStore
from mnemoflow.pipeline.http.hostguard import HostCheck
from mnemoflow.pipeline.http.models import (
    EraseIn,
    ErrorOut,
    EventOut,
    FeedbackIn,
    ForgetIn,
    HealthOut,
    HitOut,
    Mem0AddIn,
    Mem0SearchIn,
    Mem0SearchOut,
    RecallIn,
    ReceiptOut,
    ReportOut,
    RowOut,
    StoreIn,
    StoreManyIn,
    UpdateIn,
)

ERRORS = {401: "no or unknown API key", 403: "outside the key's namespaces"}
STATUS = {
    ValidationError: 400,
    NamespaceNotFound: 404,
    MemoryNotFound: 404,
    MemoryGone: 410,
    KeyErased: 410,
    ProjectionLag: 503,
    StorageError: 503,  # the disk (full, failing): nothing was acknowledged, retry later
}


class HttpError(Exception):
    def __init__(self, status: int, detail: str, kind: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.kind = kind or {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests"}.get(
            status, "HttpError"
        )


class _Bucket:
    """A token bucket per key: `rate` requests a second, up to `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens < 1:
                self._state[who] = (tokens, now)
                return False
            self._state[who] = (tokens - 1, now)
            return True


class BodyLimit:
    """413 for a body over the limit, whether or not it says its length up front."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(send, self.limit)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = ErrorOut(error="PayloadTooLarge", detail=f"the body is over {limit} bytes")
    raw = body.model_dump_json().encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": raw})


@dataclass
class _Metrics:
    requests: defaultdict[tuple[str, str, int], int]
    seconds: defaultdict[str, float]
    lock: threading.Lock


class Guard:
    """Who is calling, and whether they may: keys, scopes, admin routes, the rate per key."""

    def __init__(
        self,
        memory: Memory,
        keys: KeyStore,
        settings: ServerSettings,
        *,
        open_access: bool,
        local_token: str | None,
    ) -> None:
        self.memory, self.keys, self.settings = memory, keys, settings
        self.open_access, self.local_token = open_access, local_token
        self.bucket = _Bucket(settings.rate_per_second, settings.burst)

    def caller(self, request: Request) -> ApiKey | None:
        if self.open_access:
            return None
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else None
        secret = secret or request.headers.get("x-api-key")
        if not secret:
            raise HttpError(401, "send an API key: Authorization: Bearer <key>")
        if self.local_token is not None and secrets.compare_digest(secret, self.local_token):
            key: ApiKey | None = ApiKey("local", "", admin=True)
        else:
            key = self.keys.find(secret)
        if key is None:
            raise HttpError(401, "unknown or revoked API key")
        if not self.bucket.take(key.id):
            rate = self.settings.rate_per_second
            raise HttpError(429, f"over {rate:g} requests a second for this key")
        return key

    def allow(self, key: ApiKey | None, namespace: str) -> None:
        if key is not None and not key.may(namespace):
            raise HttpError(403, f"this key may not touch namespace {namespace!r}")

    def allow_memory(self, key: ApiKey | None, memory_id: str) -> None:
        if key is not None and not key.admin:
            events = self.memory.history(memory_id)  # MemoryNotFound -> 404
            self.allow(key, events[0].namespace)

    def admin(self, key: ApiKey | None) -> None:
        if key is not None and not key.admin:
            raise HttpError(403, "this route needs an admin key")


def create_app(
    memory: Memory,
    keys: KeyStore,
    settings: ServerSettings | None = None,
    *,
    open_access: bool = False,
    status: Callable[[], dict[str, Any]] | None = None,
    local_token: str | None = None,
) -> FastAPI:
    """The API over `memory`. `local_token` is an admin key for this data directory's own
    CLI (written, 0600, beside the data); `status` replaces `memory.stats` for /stats."""
    s = settings or ServerSettings()
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorOut, "description": text}
        for code, text in {
            400: "the request is invalid; nothing changed",
            401: ERRORS[401],
            403: ERRORS[403],
            404: "no such namespace or memory",
            413: "the body is too large",
            422: "the body does not match the schema",
            429: "too many requests for this key",
        }.items()
    }
    app = FastAPI(
        title="mnemoflow",
        version="0.1.0",
        description="Long-term memory for AI agents: store, recall, audit.",
        responses=responses,
    )
    app.add_middleware(BodyLimit, limit=s.max_body_bytes)
    # Added last, so it runs first: an untrusted Host reaches nothing, not even the body limit.
    app.add_middleware(HostCheck, allowed=() if open_access else s.allowed_hosts or None)

    guard = Guard(memory, keys, s, open_access=open_access, local_token=local_token)
    _handle_errors(app)
    metrics = _count_requests(app)
    _memory_routes(app, memory, guard)
    _mem0_routes(app, memory, guard)
    _service_routes(app, memory, guard, metrics, status)
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


def _count_requests(app: FastAPI) -> _Metrics:
    metrics = _Metrics(defaultdict(int), defaultdict(float), threading.Lock())

    @app.middleware("http")
    async def count(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
        began = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "other")
        with metrics.lock:
            metrics.requests[(path, request.method, response.status_code)] += 1
            metrics.seconds[path] += time.perf_counter() - began
        return response

    return metrics


def _memory_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)
    allow, allow_memory = guard.allow, guard.allow_memory

    @app.post("/store", response_model=ReceiptOut, tags=["memories"])
    def store(body: StoreIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Store a memory; the receipt's position is durable when this returns."""
        allow(key, body.namespace)
        request = StoreRequest(
            body.text, body.namespace, body.metadata, body.occurred_at, body.event_id
        )
        (r,) = memory.store_many([request])
        return receipt_json(r)

    @app.post("/store_many", response_model=list[ReceiptOut], tags=["memories"])
    def store_many(body: StoreManyIn, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """Store up to 1,000 memories with one durable write; all are checked first."""
        for item in body.items:
            allow(key, item.namespace)
        requests = [
            StoreRequest(i.text, i.namespace, i.metadata, i.occurred_at, i.event_id)
            for i in body.items
        ]
        return [receipt_json(r) for r in memory.store_many(requests)]

    @app.post("/update", response_model=ReceiptOut, tags=["memories"])
    def update(body: UpdateIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, body.memory_id)
        r = memory.update(body.memory_id, body.text, body.metadata, body.occurred_at, body.event_id)
        return receipt_json(r)

    @app.post("/forget", response_model=ReceiptOut, tags=["memories"])
    def forget(body: ForgetIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, body.memory_id)
        return receipt_json(memory.forget(body.memory_id, body.reason, body.event_id))

    @app.post("/feedback", response_model=ReceiptOut, tags=["memories"])
    def feedback(body: FeedbackIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, body.memory_id)
        r = memory.feedback(body.memory_id, body.useful, body.note, body.event_id)
        return receipt_json(r)

    @app.post("/recall", response_model=list[HitOut], tags=["recall"])
    def recall(body: RecallIn, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """The k memories that best answer the query, with channel scores and provenance."""
        allow(key, body.namespace)
        hits = memory.recall(
            body.query,
            body.namespace,
            body.k,
            min_position=body.min_position,
            as_of=body.as_of,
            filters=body.filters,
            now=body.now,
        )
        return [h.to_json() for h in hits]

    @app.get("/memories/{memory_id}", response_model=RowOut, tags=["memories"])
    def get(memory_id: str, key: ApiKey | None = authorised) -> dict[str, Any]:
        allow_memory(key, memory_id)
        row = memory.get(memory_id)
        if row is None:
            raise MemoryNotFound(f"no memory {memory_id!r} in the projections yet")
        return row_json(row)

    @app.get("/namespaces/{namespace}/memories", response_model=list[RowOut], tags=["memories"])
    def memories(
        namespace: str,
        limit: int = 100,
        offset: int = 0,
        status: str | None = None,
        key: ApiKey | None = authorised,
    ) -> list[dict[str, Any]]:
        allow(key, namespace)
        if not 1 <= limit <= 1000 or offset < 0:
            raise ValidationError("limit must be 1..1000 and offset at least 0")
        return [
            row_json(r)
            for r in memory.memories(namespace, status=status, limit=limit, offset=offset)
        ]

    @app.get("/history/{memory_id}", response_model=list[EventOut], tags=["audit"])
    def history(memory_id: str, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """The input events of a memory, oldest first."""
        allow_memory(key, memory_id)
        return [e.to_json() for e in memory.history(memory_id)]

    @app.get("/audit/{memory_id}", response_model=list[EventOut], tags=["audit"])
    def audit(memory_id: str, key: ApiKey | None = authorised) -> list[dict[str, Any]]:
        """Every event, in every stream, that produced, changed, linked, consolidated or
        boosted the memory, with stream, position, actor, time and hash."""
        allow_memory(key, memory_id)
        return [e.to_json() for e in memory.audit(memory_id)]

    @app.post("/erase", response_model=ReceiptOut, tags=["memories"])
    def erase(body: EraseIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Destroy the namespace's key: its text is unreadable everywhere, for good."""
        allow(key, body.namespace)
        return receipt_json(memory.erase(body.namespace))


def _mem0_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)
    allow = guard.allow

    @app.post("/memories/add", tags=["mem0-compatible"])
    def mem0_add(body: Mem0AddIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """mem0's add: `user_id` is the namespace."""
        allow(key, body.user_id)
        r = memory.store(body.text, body.user_id, body.metadata)
        return {"results": [{"id": r.memory_id, "memory": body.text, "event": "ADD"}]}

    @app.post("/memories/search", response_model=Mem0SearchOut, tags=["mem0-compatible"])
    def mem0_search(body: Mem0SearchIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """mem0's search: `user_id` is the namespace, `limit` is k. It sees every write
        acknowledged before it began, as mem0's users expect of an add then a search (it
        waits for the actors, up to [query] wait_timeout)."""
        allow(key, body.user_id)
        seen = memory.log.input.last_position
        hits = memory.recall(body.query, body.user_id, body.limit, min_position=seen)
        return {
            "results": [
                {"id": h.memory_id, "memory": h.text, "score": h.score, "metadata": h.metadata}
                for h in hits
            ]
        }


def _service_routes(
    app: FastAPI,
    memory: Memory,
    guard: Guard,
    metrics: _Metrics,
    status: Callable[[], dict[str, Any]] | None,
) -> None:
    authorised = Depends(guard.caller)
    admin = guard.admin

    @app.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness, and readiness: whether recall sees every acknowledged write yet (after a
        restart the projections catch up with the log). Answers without a key."""
        last = memory.log.input.last_position
        return {
            "status": "ok",
            "input_position": last,
            "projected_position": memory.runtime.projector.duck.applied(INPUT_STREAM),
            "ready": memory.runtime.sees(last),
        }

    @app.get("/verify", response_model=ReportOut, tags=["service"])
    def verify(key: ApiKey | None = authorised) -> dict[str, Any]:
        """Check every stream's hash chain (admin)."""
        admin(key)
        return report_json(memory.verify())

    @app.get("/stats", tags=["service"])
    def stats(key: ApiKey | None = authorised) -> dict[str, Any]:
        """Streams, actors, projections, memory counts, disk (admin)."""
        admin(key)
        return status() if status is not None else memory.stats()

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def prometheus(key: ApiKey | None = authorised) -> str:
        """Prometheus text format: requests, latency, events per stream, memories. Totals
        only, no namespace in them: any valid key may read them (a scraper's need not be
        an admin's)."""
        lines = [
            "# HELP mnemo_http_requests_total HTTP requests by route, method and status.",
            "# TYPE mnemo_http_requests_total counter",
        ]
        with metrics.lock:
            for (path, method, code), n in sorted(metrics.requests.items()):
                lines.append(
                    f'mnemo_http_requests_total{{route="{path}",method="{method}",'
                    f'status="{code}"}} {n}'
                )
            lines += [
                "# HELP mnemo_http_request_seconds_sum Time spent answering, by route.",
                "# TYPE mnemo_http_request_seconds_sum counter",
            ]
            for path, seconds in sorted(metrics.seconds.items()):
                lines.append(f'mnemo_http_request_seconds_sum{{route="{path}"}} {seconds:.6f}')
        lines += [
            "# HELP mnemo_stream_events Events in each stream of the log.",
            "# TYPE mnemo_stream_events gauge",
        ]
        for name in memory.log.stream_names():
            lines.append(
                f'mnemo_stream_events{{stream="{name}"}} {memory.log.stream(name).last_position}'
            )
        return "\n".join(lines) + "\n"
