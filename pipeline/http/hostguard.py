"""Which `Host` names the HTTP API answers to: the defence against DNS rebinding.

A web page can point a name of its own at 127.0.0.1; the browser then sends that name as the
`Host` of every request the page makes to a server on loopback. A server started `--open`
(no keys) answers only to loopback names, so such a page can neither read nor erase. With
keys, `[server] allowed_hosts` lists the names it answers to besides loopback (empty: any,
since every call needs a key anyway). Refusals are a JSON 400 that changes nothing.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

from starlette.types import ASGIApp, Receive, Scope, Send

from mnemoflow.pipeline.http.models import ErrorOut

_NAME = re.compile(r"[a-z0-9_.\-]+")


def is_loopback(host: str) -> bool:
    """A loopback name or address: `localhost`, 127.0.0.0/8, ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name in a `Host` header, lower case, without port or final dot; None if malformed."""
    header = header.strip().lower()
    if header.startswith("["):  # an IPv6 literal: [::1]:8765
        end = header.find("]")
        if end < 0 or not re.fullmatch(r"(:\d*)?", header[end + 1 :]):
            return None
        name = header[1:end]
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        return name
    name, _, port = header.partition(":")
    name = name.rstrip(".")
    if not name or not _NAME.fullmatch(name) or not re.fullmatch(r"\d*", port):
        return None
    return name


class HostCheck:
    """ASGI middleware: a request whose `Host` is not allowed gets 400 before any route runs."""

    def __init__(self, app: ASGIApp, allowed: Collection[str] | None) -> None:
        """`allowed`: names allowed besides loopback; None allows any name."""
        self.app = app
        self.allowed = None if allowed is None else {a.lower().rstrip(".") for a in allowed}

    def permits(self, header: str | None) -> bool:
        name = host_name(header) if header is not None else None
        if name is None:
            return False
        return self.allowed is None or is_loopback(name) or name in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"host")
        if self.permits(header.decode("latin-1") if header is not None else None):
            await self.app(scope, receive, send)
            return
        body = ErrorOut(
            error="UntrustedHost",
            detail="this server does not answer to that Host name "
            "(loopback only when --open; see [server] allowed_hosts)",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.model_dump_json().encode()})
