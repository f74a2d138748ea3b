"""HTML for the dashboard's pages: a layout, and small pieces every page uses. Every value
that came from the log is escaped here; data a page's script reads travels as JSON in a
`<script type="application/json">` block, never as code."""

from __future__ import annotations

import difflib
import html
import json
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote


def h(value: object) -> str:
    """A value as HTML text."""
    return html.escape("" if value is None else str(value), quote=True)


def url(*parts: str, **query: object) -> str:
    path = "/ui/" + "/".join(quote(p, safe="") for p in parts)
    given = {k: v for k, v in query.items() if v not in (None, "")}
    if given:
        path += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in given.items())
    return path


def link(text: object, *parts: str, **query: object) -> str:
    return f'<a href="{h(url(*parts, **query))}">{h(text)}</a>'


def data(name: str, value: Any) -> str:
    """A page's data for its script (`readData(name)` in app.js)."""
    text = json.dumps(value, default=str).replace("</", "<\\/")
    return f'<script type="application/json" id="data-{h(name)}">{text}</script>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table of cells already made HTML."""
    head = "".join(f"<th>{h(c)}</th>" for c in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{h(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def bars(channels: dict[str, float]) -> str:
    """A hit's channel scores as bars (each channel's score, at most 1)."""
    rows = []
    for channel, score in sorted(channels.items()):
        width = max(0.0, min(1.0, score)) * 100
        rows.append(
            f'<div class="bar" data-channel="{h(channel)}"><span class="name">{h(channel)}</span>'
            f'<span class="track"><span class="fill" style="width:{width:.1f}%"></span></span>'
            f'<span class="value">{score:.3f}</span></div>'
        )
    return f'<div class="bars">{"".join(rows)}</div>'


def diff(before: str, after: str) -> str:
    """Word by word: what an update took out and put in."""
    a, b = before.split(), after.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b).get_opcodes():
        if op in ("delete", "replace"):
            out.append(f"<del>{h(' '.join(a[i1:i2]))}</del>")
        if op in ("insert", "replace"):
            out.append(f"<ins>{h(' '.join(b[j1:j2]))}</ins>")
        if op == "equal":
            out.append(h(" ".join(a[i1:i2])))
    return " ".join(out)


def layout(title: str, body: str, *, csrf: str, who: str, scripts: Sequence[str] = ()) -> str:
    """A whole page. `csrf`: the token the page's actions send back; `who`: the key's id
    (or "open"). No secret is on a page."""
    tags = "".join(f'<script src="/ui/static/{h(s)}"></script>' for s in scripts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="{h(csrf)}">
<title>{h(title)} · mnemoflow</title>
<link rel="stylesheet" href="/ui/static/app.css">
<link rel="stylesheet" href="/ui/static/vendor/uPlot.min.css">
</head><body>
<header><a class="brand" href="/ui">mnemoflow</a>
<nav><a href="/ui">Namespaces</a> <a href="/ui/health">Health</a></nav>
<span class="who">key: {h(who)}</span></header>
<main><h1>{h(title)}</h1>{body}</main>
<script src="/ui/static/app.js"></script>{tags}
</body></html>"""
