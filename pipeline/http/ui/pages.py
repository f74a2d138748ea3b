"""The dashboard, served at /ui by `mnemo serve`: namespaces, search with each hit's channel
scores, a memory's versions, feedback, decay curve and provenance, the linker's graph around
a memory, a namespace's timeline, episodes and patterns, the pipeline's health, and actions
(store, forget, feedback, erase).

Pages are rendered here, with a little script for charts, the graph and actions (no network
but this server: the libraries are vendored under `static/vendor`). A page reads what the
API reads, through the same `Memory`, and a key reaches what it reaches over the API: a key
for alice sees alice's pages only. Signing in gives a session: a random token in an HttpOnly,
SameSite=Strict cookie, which this process maps to the key (the key itself is never in a
page or a cookie); `--open` needs none. An action is a JSON POST carrying the page's CSRF
token in a header, which another site can neither read nor send.
"""

from __future__ import annotations

import functools
import inspect
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from mnemoflow.eventlog.errors import MemoryNotFound, MnemoError, NamespaceNotFound
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.http.guard import Guard, HttpError
from mnemoflow.pipeline.http.ui import views
from mnemoflow.pipeline.http.ui.render import layout

STATIC = Path(__file__).parent / "static"
COOKIE = "mnemo_session"
UPLOT = "vendor/uPlot.iife.min.js"
SESSIONS_KEPT = 1_000


@dataclass(frozen=True)
class Caller:
    key: ApiKey | None  # None: the server is --open
    csrf: str

    @property
    def who(self) -> str:
        return "open" if self.key is None else self.key.id


class Sessions:
    """Signed-in browsers: a session token -> the key's secret (looked up again on every
    request, so a revoked key signs its sessions out) and the session's CSRF token."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard
        self._sessions: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self.open_csrf = secrets.token_urlsafe(24)

    def start(self, secret: str) -> str:
        self._guard.admitted(secret)  # 401 for an unknown key
        token = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._sessions) >= SESSIONS_KEPT:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[token] = (secret, secrets.token_urlsafe(24))
        return token

    def end(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)

    def caller(self, request: Request) -> Caller:
        if self._guard.open_access:
            return Caller(None, self.open_csrf)
        with self._lock:
            found = self._sessions.get(request.cookies.get(COOKIE) or "")
        if found is None:
            raise HttpError(401, "sign in with an API key")
        secret, csrf = found
        return Caller(self._guard.admitted(secret), csrf)

    def acting(self, request: Request) -> Caller:
        """The caller of an action: it must carry the page's CSRF token."""
        caller = self.caller(request)
        sent = request.headers.get("x-csrf-token", "")
        if not secrets.compare_digest(sent, caller.csrf):
            raise HttpError(403, "the action did not come from a page of this dashboard")
        return caller


Page = Callable[..., str]


def add_ui(app: FastAPI, memory: Memory, guard: Guard) -> None:
    sessions = Sessions(guard)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    _add_pages(app, memory, guard, sessions)
    _add_actions(app, memory, guard, sessions)


def _add_pages(app: FastAPI, memory: Memory, guard: Guard, sessions: Sessions) -> None:
    page = functools.partial(_page, sessions)

    @app.get("/ui", include_in_schema=False)
    @page("Namespaces")
    def overview(caller: Caller, request: Request) -> str:
        rows = views.namespaces(memory)
        return views.overview_page(
            [r for r in rows if caller.key is None or caller.key.may(r.name)]
        )

    @app.get("/ui/ns/{namespace}", include_in_schema=False)
    @page(lambda namespace: f"Namespace {namespace}")
    def namespace_page(caller: Caller, request: Request, namespace: str) -> str:
        guard.allow(caller.key, namespace)
        q = request.query_params.get("q") or ""
        offset = _int(request.query_params.get("offset"), 0)
        return views.namespace_page(memory, namespace, q, offset)

    @app.get("/ui/ns/{namespace}/timeline", include_in_schema=False)
    @page(lambda namespace: f"Timeline of {namespace}", UPLOT, "timeline.js")
    def timeline(caller: Caller, request: Request, namespace: str) -> str:
        guard.allow(caller.key, namespace)
        return views.timeline_page(memory, namespace, request.query_params.get("kind"))

    @app.get("/ui/ns/{namespace}/episodes", include_in_schema=False)
    @page(lambda namespace: f"Episodes and patterns of {namespace}")
    def episodes(caller: Caller, request: Request, namespace: str) -> str:
        guard.allow(caller.key, namespace)
        return views.episodes_page(memory, namespace)

    @app.get("/ui/episode/{episode_id}", include_in_schema=False)
    @page(lambda episode_id: f"Episode {episode_id}")
    def episode_page(caller: Caller, request: Request, episode_id: str) -> str:
        guard.allow_memory(caller.key, episode_id)
        return views.episode_page(memory, episode_id)

    @app.get("/ui/memory/{memory_id}", include_in_schema=False)
    @page(lambda memory_id: f"Memory {memory_id}", UPLOT, "memory.js")
    def memory_page(caller: Caller, request: Request, memory_id: str) -> str:
        guard.allow_memory(caller.key, memory_id)
        return views.memory_page(memory, memory_id, datetime.now(UTC))

    @app.get("/ui/memory/{memory_id}/graph", include_in_schema=False)
    @page(lambda memory_id: f"Graph around {memory_id}", "vendor/cytoscape.min.js", "graph.js")
    def graph_page(caller: Caller, request: Request, memory_id: str) -> str:
        guard.allow_memory(caller.key, memory_id)
        return views.graph_page(memory, memory_id)

    @app.get("/ui/health", include_in_schema=False)
    @page("Health", UPLOT, "health.js")
    def health(caller: Caller, request: Request) -> str:
        guard.admin(caller.key)
        return views.health_page(memory.stats())

    @app.get("/ui/login", include_in_schema=False)
    def login_page() -> Response:
        body = views.login_page()
        return HTMLResponse(layout("Sign in", body, csrf="", who="-"), headers=_HEADERS)


def _add_actions(app: FastAPI, memory: Memory, guard: Guard, sessions: Sessions) -> None:
    """What the pages' scripts call: signing in and out, the actions, the graph's and the
    health page's data."""

    @app.post("/ui/api/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        body = await _json(request)
        try:
            token = sessions.start(str(body.get("key") or ""))
        except HttpError as exc:
            return JSONResponse({"error": exc.detail}, status_code=exc.status)
        response = JSONResponse({"ok": True})
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/ui")
        return response

    @app.post("/ui/api/logout", include_in_schema=False)
    def logout(request: Request) -> Response:
        sessions.end(request.cookies.get(COOKIE))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE, path="/ui")
        return response

    def acting_on(request: Request, body: dict[str, Any], field: str) -> str:
        """The namespace or memory (`field` of the body) an action is on, once its caller,
        with the page's CSRF token, may act on it."""
        caller = sessions.acting(request)
        target = str(body.get(field) or "")
        if field == "namespace":
            guard.allow(caller.key, target)
        else:
            guard.allow_memory(caller.key, target)
        return target

    @app.post("/ui/api/store", include_in_schema=False)
    @_api
    def store(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        r = memory.store(str(body.get("text") or ""), acting_on(request, body, "namespace"))
        return {"memory_id": r.memory_id, "position": r.position}

    @app.post("/ui/api/forget", include_in_schema=False)
    @_api
    def forget(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        memory_id = acting_on(request, body, "memory_id")
        return {"position": memory.forget(memory_id, reason=body.get("reason")).position}

    @app.post("/ui/api/feedback", include_in_schema=False)
    @_api
    def feedback(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        memory_id = acting_on(request, body, "memory_id")
        return {"position": memory.feedback(memory_id, bool(body.get("useful"))).position}

    @app.post("/ui/api/erase", include_in_schema=False)
    @_api
    def erase(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        namespace = acting_on(request, body, "namespace")
        if body.get("confirm") != namespace:
            raise HttpError(422, "type the namespace's name to erase it")
        return {"position": memory.erase(namespace).position}

    @app.get("/ui/api/graph/{memory_id}", include_in_schema=False)
    @_api
    def graph(request: Request, memory_id: str) -> dict[str, Any]:
        caller = sessions.caller(request)
        guard.allow_memory(caller.key, memory_id)
        return views.graph_around(memory, memory_id)

    @app.get("/ui/api/verify", include_in_schema=False)
    @_api
    def verify(request: Request) -> dict[str, Any]:
        guard.admin(sessions.caller(request).key)
        report = memory.verify()
        return {
            "ok": report.ok,
            "checked": report.checked,
            "first_bad_position": report.first_bad_position,
            "stream": report.stream,
            "reason": report.reason,
        }

    @app.get("/ui/api/health", include_in_schema=False)
    @_api
    def health_data(request: Request) -> dict[str, Any]:
        guard.admin(sessions.caller(request).key)
        return memory.stats()


def _page(
    sessions: Sessions, title: str | Callable[..., str], *scripts: str
) -> Callable[[Page], Callable[..., Response]]:
    """A page: rendered for its caller; signed out -> the sign-in page; refused or
    missing -> a page that says so."""

    def wrap(render: Page) -> Callable[..., Response]:
        @functools.wraps(render)
        def handler(request: Request, **params: Any) -> Response:
            try:
                caller = sessions.caller(request)
                body = render(caller, request, **params)
            except HttpError as exc:
                if exc.status == 401:
                    return RedirectResponse("/ui/login", status_code=303)
                return _error(exc.status, exc.detail, sessions.open_csrf)
            except (MemoryNotFound, NamespaceNotFound) as exc:
                return _error(404, str(exc), caller.csrf)
            named = title(**params) if callable(title) else title
            html = layout(named, body, csrf=caller.csrf, who=caller.who, scripts=scripts)
            return HTMLResponse(html, headers=_HEADERS)

        # FastAPI reads the route's parameters from this: the page's, but its caller
        signature = inspect.signature(render)
        kept = [p for p in signature.parameters.values() if p.name != "caller"]
        handler.__signature__ = signature.replace(parameters=kept)  # type: ignore[attr-defined]
        return handler

    return wrap


def _api(handler: Callable[..., Any]) -> Callable[..., Response]:
    """What a page's script calls: JSON back, errors as JSON with their status."""

    @functools.wraps(handler)
    def wrapped(request: Request, **params: Any) -> Response:
        try:
            return JSONResponse(handler(request, **params), headers=_HEADERS)
        except HttpError as exc:
            return JSONResponse({"error": exc.detail}, status_code=exc.status)
        except (MemoryNotFound, NamespaceNotFound) as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except MnemoError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    return wrapped


_HEADERS = {
    # Only this server's scripts, styles and data: nothing inline runs.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _error(status: int, detail: str, csrf: str) -> HTMLResponse:
    body = f'<p class="error">{views.h(detail)}</p><p><a href="/ui">Back</a></p>'
    return HTMLResponse(
        layout(f"{status}", body, csrf=csrf, who="-"), status_code=status, headers=_HEADERS
    )


def _int(text: str | None, default: int) -> int:
    try:
        return max(0, int(text or default))
    except ValueError:
        return default


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
