"""What each dashboard page shows, read through `Memory` (and, for what no API call gives in
one piece — counts by namespace, the linker's edges around a memory, a memory's schedule —
from its projections, caught up first)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mnemoflow.actors.decay import MICROS_PER_DAY, retrievability
from mnemoflow.eventlog.errors import MemoryNotFound, NamespaceNotFound
from mnemoflow.eventlog.schema import to_micros
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.record import MemoryRecord
from mnemoflow.pipeline.http.ui.render import bars, data, diff, h, link, table, url
from mnemoflow.projections.memstate import doc_id

PAGE = 50  # memories a list shows at a time
SEARCH_K = 20
TIMELINE_EVENTS = 2_000  # the newest events a timeline shows
GRAPH_NEIGHBOURS = 60  # memories a graph shows around one, at most

__all__ = ["h"]


@dataclass(frozen=True)
class NamespaceRow:
    name: str
    by_status: dict[str, int]
    episodes: int
    last: datetime | None


def namespaces(memory: Memory) -> list[NamespaceRow]:
    """Every namespace with its memories' counts by status, its episodes and its last
    activity."""
    memory.runtime.refresh()
    con = memory.runtime.projector.duck.con.cursor()
    counts: dict[str, dict[str, int]] = {}
    last: dict[str, datetime] = {}
    for ns, status, n, newest in con.execute(
        "SELECT namespace, status, count(*), max(recorded_at) FROM memories GROUP BY ALL"
    ).fetchall():
        counts.setdefault(ns, {})[status] = int(n)
        last[ns] = max(newest, last.get(ns, newest))
    episodes = dict(
        con.execute("SELECT namespace, count(*) FROM episodes GROUP BY namespace").fetchall()
    )
    out = []
    for name in memory.namespaces():
        ns = memory._inputs.namespace_id(name) or ""
        out.append(NamespaceRow(name, counts.get(ns, {}), int(episodes.get(ns, 0)), last.get(ns)))
    return sorted(out, key=lambda r: r.name)


_NEW = (
    '<section class="actions"><h2>Store a memory</h2><form id="store">'
    '<input name="namespace" placeholder="namespace" required>'
    '<textarea name="text" required></textarea><button>Store</button></form>'
    '<p class="result" id="action-result"></p></section>'
)


def overview_page(rows: Sequence[NamespaceRow]) -> str:
    if not rows:
        return '<p class="empty">No namespaces yet.</p>' + _NEW
    body = table(
        ["namespace", "active", "other", "episodes", "last activity", ""],
        (
            [
                link(r.name, "ns", r.name),
                h(r.by_status.get("active", 0)),
                h(", ".join(f"{k} {v}" for k, v in sorted(r.by_status.items()) if k != "active")),
                h(r.episodes),
                h(_time(r.last)),
                link("timeline", "ns", r.name, "timeline")
                + " "
                + link("episodes", "ns", r.name, "episodes"),
            ]
            for r in rows
        ),
        "namespaces",
    )
    return body + _NEW


def _known(memory: Memory, namespace: str) -> None:
    if memory._inputs.namespace_id(namespace) is None:
        raise NamespaceNotFound(f"no namespace {namespace!r} here")


def namespace_page(memory: Memory, namespace: str, q: str, offset: int) -> str:
    _known(memory, namespace)
    search = (
        f'<form class="search" method="get" action="{h(url("ns", namespace))}">'
        f'<input name="q" value="{h(q)}" placeholder="Search this namespace" autofocus>'
        "<button>Search</button></form>"
    )
    if q:
        hits = memory.recall(q, namespace, SEARCH_K)
        items = "".join(
            f'<li class="hit" data-memory="{h(hit.memory_id)}"><div class="hit-head">'
            + link(hit.text or "(erased)", "memory", hit.memory_id)
            + f'<span class="score">{hit.score:.3f}</span><span class="state">{h(hit.status)}'
            + (f" · zone {h(hit.zone)}" if hit.zone else "")
            + f"</span></div>{bars(hit.channels)}</li>"
            for hit in hits
        )
        found = f'<ol class="hits">{items}</ol>' if hits else '<p class="empty">Nothing found.</p>'
    else:
        rows = memory.memories(namespace, limit=PAGE + 1, offset=offset)
        more = len(rows) > PAGE
        listed = table(
            ["memory", "status", "version", "occurred", "recorded"],
            (
                [
                    link(r.text or "(erased)", "memory", r.memory_id),
                    h(r.status),
                    h(r.version),
                    h(_time(r.occurred_at)),
                    h(_time(r.recorded_at)),
                ]
                for r in rows[:PAGE]
            ),
            "memories",
        )
        pages = []
        if offset:
            pages.append(link("← newer", "ns", namespace, offset=max(0, offset - PAGE)))
        if more:
            pages.append(link("older →", "ns", namespace, offset=offset + PAGE))
        found = listed + f'<p class="pages">{" ".join(pages)}</p>'
    actions = (
        '<section class="actions"><h2>Store a memory</h2>'
        f'<form id="store" data-namespace="{h(namespace)}"><textarea name="text" required>'
        "</textarea><button>Store</button></form>"
        "<h2>Erase this namespace</h2><p>Destroys its key: every memory, episode and pattern "
        "of it becomes unreadable everywhere. Type its name to confirm.</p>"
        f'<form id="erase" data-namespace="{h(namespace)}"><input name="confirm" '
        f'placeholder="{h(namespace)}"><button class="danger">Erase</button></form>'
        '<p class="result" id="action-result"></p></section>'
    )
    nav = (
        f'<p class="subnav">{link("timeline", "ns", namespace, "timeline")} · '
        f"{link('episodes and patterns', 'ns', namespace, 'episodes')}</p>"
    )
    return nav + search + found + actions


def memory_page(memory: Memory, memory_id: str, now: datetime) -> str:
    record = _record(memory, memory_id)
    history = memory.history(memory_id)
    texts = [e for e in history if e.text is not None]
    versions = []
    for i, event in enumerate(texts):
        shown = h(event.text) if i == 0 else diff(texts[i - 1].text or "", event.text or "")
        versions.append([h(i + 1), shown, h(_time(event.recorded_at)), h(event.position)])
    feedback = [
        [h("useful" if (e.payload or {}).get("useful") else "not useful"), h(_time(e.recorded_at))]
        for e in history
        if e.kind == "feedback.recorded"
    ]
    trail = memory.audit(memory_id)
    provenance = table(
        ["stream", "position", "kind", "actor", "recorded", "caused by", "hash"],
        (
            [
                h(e.stream),
                h(e.position),
                h(e.kind),
                h(e.actor),
                h(_time(e.recorded_at)),
                h(f"{e.causation.stream}:{e.causation.position}" if e.causation else ""),
                f'<code title="{h(e.hash)}">{h(e.hash[:12])}</code>',
            ]
            for e in trail
        ),
        "provenance",
    )
    curve = _decay_curve(memory, record.namespace, memory_id, now)
    head = (
        f'<p class="memory-text">{h(record.text or "(erased)")}</p>'
        f'<p class="meta">namespace {link(record.namespace, "ns", record.namespace)} · '
        f"status <b>{h(record.status)}</b> · version {h(record.version)} · occurred "
        f"{h(_time(record.occurred_at))} · metadata {h(json.dumps(record.metadata))}</p>"
        f'<p class="subnav">{link("graph around it", "memory", memory_id, "graph")}</p>'
        f'<div class="memory-actions" data-memory="{h(memory_id)}">'
        '<button data-useful="true">Useful</button><button data-useful="false">Not useful'
        '</button><button class="danger" data-forget="1">Forget</button>'
        '<span class="result" id="action-result"></span></div>'
    )
    return (
        head
        + "<h2>Versions</h2>"
        + table(
            ["version", "text (changes from the one before)", "recorded", "position"],
            versions,
            "versions",
        )
        + "<h2>Feedback</h2>"
        + (table(["feedback", "recorded"], feedback) if feedback else "<p>None yet.</p>")
        + "<h2>Decay</h2>"
        + (
            '<div id="decay-chart" class="chart"></div>' + data("decay", curve)
            if curve
            else "<p>No schedule yet.</p>"
        )
        + "<h2>Provenance</h2><p>Every event behind it, in every stream.</p>"
        + provenance
    )


def _decay_curve(
    memory: Memory, namespace: str, memory_id: str, now: datetime
) -> dict[str, Any] | None:
    """Retrievability from the memory's last review on, as decay schedules it."""
    namespace_id = memory._inputs.namespace_id(namespace)
    found = (
        memory.runtime.projector.duck.con.cursor()
        .execute(
            "SELECT stability, epoch_us(reviewed_at) FROM schedule WHERE namespace = ? AND doc = ?",
            [namespace_id, doc_id(memory_id)],
        )
        .fetchall()
    )
    if not found:
        return None
    stability, reviewed = float(found[0][0]), int(found[0][1])
    elapsed = max(0.0, (to_micros(now) - reviewed) / MICROS_PER_DAY)
    span = max(30.0, 3 * stability, elapsed * 1.5)
    days = [span * i / 100 for i in range(101)]
    return {
        "days": days,
        "retrievability": [round(retrievability(d, stability), 4) for d in days],
        "now": round(elapsed, 3),
        "stability": round(stability, 3),
    }


def _record(memory: Memory, memory_id: str) -> MemoryRecord:
    """The memory as it stands; an erased one is no longer anyone's to show."""
    record = memory.get(memory_id)
    if record is None or record.status == "erased":
        raise MemoryNotFound(f"no memory {memory_id!r} here")
    return record


def graph_page(memory: Memory, memory_id: str) -> str:
    return (
        "<p>Memories (circles) and entities (squares) around this memory; click a memory to "
        "expand it. Edges by kind: similar, entity, updates, extends, contradicts (red).</p>"
        '<div id="graph" class="graph"></div>'
        + data("graph", graph_around(memory, memory_id))
        + data("root", memory_id)
    )


def graph_around(memory: Memory, memory_id: str) -> dict[str, Any]:
    """The memory, the memories the linker linked it with (either way), the entities it
    names, and the consolidator's decisions between them: nodes and edges for the graph."""
    record = _record(memory, memory_id)
    con = memory.runtime.projector.duck.con.cursor()
    doc = doc_id(memory_id)
    namespace_id = memory._inputs.namespace_id(record.namespace)
    edges = con.execute(
        "SELECT src, dst, kind, weight FROM edges WHERE namespace = ? AND (src = ? OR dst = ?) "
        "ORDER BY weight DESC LIMIT ?",
        [namespace_id, doc, doc, GRAPH_NEIGHBOURS],
    ).fetchall()
    decisions = con.execute(
        "SELECT doc, target, decision FROM consolidation WHERE namespace = ? "
        "AND (doc = ? OR target = ?)",
        [namespace_id, doc, doc],
    ).fetchall()
    docs = {doc} | {d for src, dst, *_ in edges for d in (src, dst)}
    docs |= {d for a, b, _ in decisions for d in (a, b)}
    rows = con.execute(
        "SELECT doc, memory_id, text, status FROM memories WHERE doc IN (SELECT unnest(?))",
        [sorted(docs)],
    ).fetchall()
    ids = {int(d): str(m) for d, m, _, _ in rows}
    nodes = [
        {"id": str(m), "label": _short(t), "kind": "memory", "status": s, "root": int(d) == doc}
        for d, m, t, s in rows
    ]
    links = [
        {"source": ids[int(a)], "target": ids[int(b)], "kind": k, "weight": round(float(w), 3)}
        for a, b, k, w in edges
        if int(a) in ids and int(b) in ids
    ]
    links += [
        {"source": ids[int(a)], "target": ids[int(b)], "kind": decision, "weight": 1.0}
        for a, b, decision in decisions
        if int(a) in ids and int(b) in ids
    ]
    for key, kind in con.execute(
        "SELECT DISTINCT key, type FROM entities WHERE namespace = ? AND doc = ?",
        [namespace_id, doc],
    ).fetchall():
        nodes.append({"id": f"entity:{key}", "label": key, "kind": "entity", "type": kind})
        links.append(
            {"source": memory_id, "target": f"entity:{key}", "kind": "mentions", "weight": 1.0}
        )
    return {"nodes": nodes, "edges": links}


def timeline_page(memory: Memory, namespace: str, kind: str | None) -> str:
    _known(memory, namespace)
    events = list(memory.events(namespace=namespace, kind=kind or None))[-TIMELINE_EVENTS:]
    kinds = sorted({e.kind for e in memory.events(namespace=namespace)})
    choose = (
        " ".join(link(k, "ns", namespace, "timeline", kind=k) for k in kinds)
        + " "
        + link("all", "ns", namespace, "timeline")
    )
    points = [
        {
            "recorded": e.recorded_at.timestamp(),
            "occurred": (e.occurred_at or e.recorded_at).timestamp(),
            "kind": e.kind,
        }
        for e in events
    ]
    rows = table(
        ["position", "kind", "occurred", "recorded", "memory"],
        (
            [
                h(e.position),
                h(e.kind),
                h(_time(e.occurred_at)),
                h(_time(e.recorded_at)),
                link(e.memory_id, "memory", e.memory_id) if e.memory_id else "",
            ]
            for e in reversed(events[-200:])
        ),
        "timeline",
    )
    return (
        f'<p class="subnav">Kinds: {choose}</p>'
        "<p>Each event by when it happened (its writer's clock) against when the log took "
        "it; drag to zoom, double-click to zoom out.</p>"
        '<div id="timeline-chart" class="chart"></div>'
        + data("timeline", points)
        + "<h2>Newest events</h2>"
        + rows
    )


def episodes_page(memory: Memory, namespace: str) -> str:
    episodes = memory.episodes.list(namespace, limit=PAGE)
    rows = table(
        ["task", "outcome", "score", "steps"],
        (
            [
                link(e.task or "(erased)", "episode", e.episode_id),
                h(e.outcome or "under way"),
                h("" if e.score is None else f"{e.score:.2f}"),
                h(" → ".join(f"{s.tool}:{s.action}" + ("" if s.ok else " ✗") for s in e.steps)),
            ]
            for e in episodes
        ),
        "episodes",
    )
    patterns = memory.patterns.find(namespace, k=100)
    learned = table(
        ["kind", "steps", "support", "success", "kind of task"],
        (
            [
                h(p.kind),
                h(
                    f"after {p.point or 'the start'}: "
                    + ", ".join(f"{b.step} ({b.support}, {b.success_rate:.0%})" for b in p.branches)
                    if p.kind == "decision_point"
                    else f"{p.error}: " + " → ".join(p.recovery)
                    if p.kind == "error_recovery"
                    else " → ".join(p.steps)
                ),
                h(p.support),
                h(f"{p.success_rate:.0%}"),
                h(p.task),
            ]
            for p in patterns
        ),
        "patterns",
    )
    rules = table(
        ["rule", "action", "pattern", "learned from"],
        (
            [h(r.text), h(r.action), h(r.pattern or ""), h(r.learned or "")]
            for r in memory.guards.list(namespace)
        ),
        "guards",
    )
    decided = list(memory.events(namespace=namespace, kind="guard.decided"))[-PAGE:]
    decisions = table(
        ["action asked", "decision", "rules", "asked by", "recorded"],
        (
            [
                h(p.get("action")),
                h(p.get("decision")),
                h(", ".join(f"{m.get('rule_id')} ({m.get('why')})" for m in p.get("matched", []))),
                h(p.get("asked_by") or ""),
                h(_time(e.recorded_at)),
            ]
            for e in reversed(decided)
            for p in [e.payload or {}]
        ),
        "decisions",
    )
    return (
        "<h2>Episodes</h2>"
        + rows
        + "<h2>Patterns learned</h2>"
        + learned
        + "<h2>Guardrails</h2>"
        + rules
        + "<h2>Guardrail decisions (warnings and blocks)</h2>"
        + decisions
    )


def episode_page(memory: Memory, episode_id: str) -> str:
    """An episode as its events tell it: the task and its context, each step, the outcome,
    and the patterns it is behind (among the newest episodes each names)."""
    e = memory.episodes.get(episode_id)
    if e.task is None:
        raise MemoryNotFound(f"no episode {episode_id!r} here")
    steps = table(
        ["#", "tool", "action", "outcome", "latency", "tokens", "observation", "at"],
        (
            [
                h(i),
                h(s.tool),
                h(s.action),
                h("ok" if s.ok else f"failed: {s.error}"),
                h("" if s.latency_ms is None else f"{s.latency_ms:g} ms"),
                h("" if s.tokens is None else s.tokens),
                h(s.observation or ""),
                h(_time(s.at)),
            ]
            for i, s in enumerate(e.steps, 1)
        ),
        "steps",
    )
    behind = [p for p in memory.patterns.find(e.namespace, k=1000) if episode_id in p.episodes]
    patterns = (
        table(
            ["kind", "steps", "support", "success"],
            (
                [h(p.kind), h(" → ".join(p.steps)), h(p.support), h(f"{p.success_rate:.0%}")]
                for p in behind
            ),
            "patterns",
        )
        if behind
        else "<p>None names it.</p>"
    )
    head = (
        f'<p class="memory-text">{h(e.task)}</p>'
        f'<p class="meta">namespace {link(e.namespace, "ns", e.namespace, "episodes")} · '
        f"domain {h(e.domain or '-')} · tags {h(', '.join(e.tags) or '-')} · started "
        f"{h(_time(e.started_at))} · outcome <b>{h(e.outcome or 'under way')}</b>"
        + ("" if e.score is None else f" · score {e.score:.2f}")
        + ("" if e.duration_ms is None else f" · {e.duration_ms / 1000:.1f} s")
        + f"</p><p>result: {h(e.result or '-')}; error: {h(e.error or '-')}</p>"
    )
    return head + "<h2>Steps</h2>" + steps + "<h2>Patterns it is behind</h2>" + patterns


def health_page(stats: dict[str, Any]) -> str:
    actors = table(
        ["actor", "processed", "lag", "events/s"],
        (
            [h(name), h(a["processed"]), h(a["lag"]), h(a["events_per_s"])]
            for name, a in stats["actors"].items()
        ),
        "actors",
    )
    duck = stats["projections"]["duckdb"]
    projections = table(
        ["stream", "events", "applied (DuckDB)", "lag"],
        (
            [
                h(name),
                h(s["events"]),
                h(duck["applied"].get(name, "")),
                h(duck["lag"].get(name, "")),
            ]
            for name, s in stats["streams"].items()
        ),
        "streams",
    )
    disk = table(["part", "bytes"], ([h(k), h(f"{v:,}")] for k, v in stats["disk_bytes"].items()))
    return (
        '<p><button id="verify">Verify the log</button> <span id="verified" class="result">'
        "Every stream's hash chain and signed head, recomputed.</span></p>"
        "<p>Refreshed every two seconds. The chart: each actor's lag (events behind).</p>"
        '<div id="health-chart" class="chart"></div>'
        + data("health", stats)
        + "<h2>Actors</h2>"
        + actors
        + "<h2>Streams and projections</h2>"
        + projections
        + "<h2>Disk</h2>"
        + disk
    )


def login_page() -> str:
    return (
        "<p>Sign in with an API key (`mnemo keys create`). It stays on this server: the "
        "browser keeps only a session cookie.</p>"
        '<form id="login"><input name="key" type="password" autocomplete="off" '
        'placeholder="mnemo_..."><button>Sign in</button></form>'
        '<p class="result" id="action-result"></p>'
    )


def _short(text: str | None, size: int = 60) -> str:
    text = text or "(erased)"
    return text if len(text) <= size else text[: size - 1] + "…"


def _time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.isoformat(timespec="seconds")
