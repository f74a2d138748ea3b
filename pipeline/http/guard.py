"""Who may call, and how much: API keys and their namespaces, admin routes, a rate per key,
and the body limit. The Host check is `hostguard`; the keys themselves are `apikeys`."""

from __future__ import annotations

import secrets
import threading
import time

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnemoflow.actors.patterns import pattern_anchor
from mnemoflow.eventlog.errors import MemoryNotFound
from mnemoflow.pipeline.api.apikeys import ApiKey, KeyStore
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.server_settings import ServerSettings
from mnemoflow.pipeline.http.models import ErrorOut


class HttpError(Exception):
    def __init__(self, status: int, detail: str, kind: str | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.kind = kind or {401: "Unauthorized", 403: "Forbidden", 429: "TooManyRequests"}.get(
            status, "HttpError"
        )


class RateBucket:
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
        self.bucket = RateBucket(settings.rate_per_second, settings.burst)

    def caller(self, request: Request) -> ApiKey | None:
        if self.open_access:
            return None
        header = request.headers.get("authorization", "")
        secret = header[7:].strip() if header.lower().startswith("bearer ") else None
        secret = secret or request.headers.get("x-api-key")
        if not secret:
            raise HttpError(401, "send an API key: Authorization: Bearer <key>")
        return self.admitted(secret)

    def admitted(self, secret: str) -> ApiKey:
        """The key a secret is (401 if none, or revoked), within its rate (429 past it)."""
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
        """A scoped key reaches a memory, an episode, a rule or a pattern (by the episode
        it is anchored on) of its namespaces only; none at all: 404."""
        if key is not None and not key.admin:
            anchor = pattern_anchor(memory_id)
            try:
                events = self.memory.history(memory_id)
            except MemoryNotFound:
                if anchor is None:
                    raise
                events = self.memory.history(anchor)
            self.allow(key, events[0].namespace)

    def admin(self, key: ApiKey | None) -> None:
        if key is not None and not key.admin:
            raise HttpError(403, "this route needs an admin key")


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
