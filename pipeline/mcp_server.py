"""`mnemo mcp`: the memory as MCP tools over stdio, for Claude Code, Cursor and other clients.

The tools work on the data directory in-process, or through `mnemo serve` when it is
serving the same directory (or `--url` and `--api-key` name a service). Standard output is
the protocol: logs go to standard error. A refused call (bad input, unknown memory or
namespace) comes back as a tool error with the reason, for the model to read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from mnemoflow.actors.query.hit import Hit
from mnemoflow.eventlog.errors import MnemoError
from mnemoflow.pipeline.api.client import RemoteMemory, running_server
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import contradiction_json, receipt_json, record_json

INSTRUCTIONS = """Long-term memory. Store facts worth keeping about a user or a task with
add_memory (one fact per call, in a sentence that stands on its own), and look them up with
search_memory before answering questions that depend on what was said earlier. A namespace
keeps one user's (or one project's) memories apart from everyone else's: always pass the
same namespace for the same user. When a recalled memory helped or misled, say so with
give_feedback; when a fact changes, update_memory; when it should go, delete_memory."""

Scalar = str | int | float | bool | None
T = TypeVar("T")


def build(backend: Memory | RemoteMemory) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer("mnemoflow", instructions=INSTRUCTIONS, version="0.1.0")
    _write_tools(server, backend)
    _read_tools(server, backend)
    _episode_tools(server, backend)
    return server


def guarded(call: Callable[[], T]) -> T:
    """The call's answer, or a tool error that names what was refused and why."""
    try:
        return call()
    except MnemoError as exc:
        raise ToolError(f"{type(exc).__name__}: {exc}") from exc


def _write_tools(server: MCPServer[Any], backend: Memory | RemoteMemory) -> None:
    @server.tool()
    def add_memory(
        text: str, namespace: str, metadata: dict[str, Scalar] | None = None
    ) -> dict[str, Any]:
        """Store one memory (a fact, preference, plan or event) in a namespace, e.g. a user's
        id. Returns its memory_id and its position in the log."""
        return guarded(lambda: receipt_json(backend.store(text, namespace, metadata)))

    @server.tool()
    def update_memory(memory_id: str, text: str) -> dict[str, Any]:
        """Replace a memory's text (the old version stays in its history)."""
        return guarded(lambda: receipt_json(backend.update(memory_id, text)))

    @server.tool()
    def delete_memory(memory_id: str, reason: str | None = None) -> dict[str, Any]:
        """Forget a memory: recall stops returning it (the log keeps that it was forgotten)."""
        return guarded(lambda: receipt_json(backend.forget(memory_id, reason)))

    @server.tool()
    def give_feedback(memory_id: str, useful: bool, note: str | None = None) -> dict[str, Any]:
        """Say whether a recalled memory helped (useful=true) or misled (useful=false);
        it moves that memory up or down in later searches."""
        return guarded(lambda: receipt_json(backend.feedback(memory_id, useful, note)))


def _read_tools(server: MCPServer[Any], backend: Memory | RemoteMemory) -> None:
    @server.tool()
    def search_memory(query: str, namespace: str, k: int = 5) -> list[dict[str, Any]]:
        """Find the k memories of the namespace that best answer the query (a question or
        keywords), best first, each with its text, score, time and category."""
        return guarded(lambda: [_hit_json(h) for h in backend.recall(query, namespace, k)])

    @server.tool()
    def list_memories(namespace: str, limit: int = 20, offset: int = 0) -> list[dict[str, Any]]:
        """The namespace's memories, oldest first, `limit` at a time from `offset`."""
        return guarded(
            lambda: [
                record_json(r) for r in backend.memories(namespace, limit=limit, offset=offset)
            ]
        )

    @server.tool()
    def get_memory(memory_id: str) -> dict[str, Any]:
        """One memory as it stands now: text, status, version, metadata, times."""
        row = guarded(lambda: backend.get(memory_id))
        if row is None:
            raise ToolError(f"MemoryNotFound: no memory {memory_id!r}")
        return record_json(row)

    @server.tool()
    def list_contradictions(namespace: str) -> list[dict[str, Any]]:
        """Memories that contradict each other in a namespace, which one supersedes the
        other (the older is archived), and the events behind each."""
        return guarded(lambda: [contradiction_json(c) for c in backend.contradictions(namespace)])

    @server.tool()
    def audit_memory(memory_id: str) -> list[dict[str, Any]]:
        """Every event behind a memory: what stored, changed, linked, merged or boosted it,
        with stream, position, actor, time and hash."""
        return guarded(lambda: [e.to_json() for e in backend.audit(memory_id)])


def _episode_tools(server: MCPServer[Any], backend: Memory | RemoteMemory) -> None:
    @server.tool()
    def start_episode(
        task: str, namespace: str, domain: str | None = None, tags: list[str] | None = None
    ) -> dict[str, Any]:
        """Start recording a task you are about to do; returns its episode_id. Log each tool
        call with log_step, then complete_episode."""
        r = guarded(lambda: backend.episodes.start(task, namespace, domain=domain, tags=tags or ()))
        return receipt_json(r) | {"episode_id": r.memory_id}

    @server.tool()
    def log_step(
        episode_id: str, tool: str, action: str, error: str | None = None
    ) -> dict[str, Any]:
        """Record one step of an episode: the tool, what it did, and the error if it failed."""
        return guarded(
            lambda: receipt_json(backend.episodes.step(episode_id, tool, action, error=error))
        )

    @server.tool()
    def complete_episode(
        episode_id: str, success: bool, result: str | None = None, score: float | None = None
    ) -> dict[str, Any]:
        """Record how the task ended (score 0..1, computed from the steps if not given)."""
        return guarded(
            lambda: receipt_json(
                backend.episodes.complete(episode_id, success, result=result, score=score)
            )
        )

    @server.tool()
    def check_action(action: str, namespace: str) -> dict[str, Any]:
        """Before acting: allow, warn or block, with the rules that matched and why. Do not
        take a blocked action; weigh a warning."""
        return guarded(lambda: backend.guards.check(action, namespace, asked_by="mcp").to_json())

    @server.tool()
    def get_task_context(task: str, namespace: str, k: int = 5) -> dict[str, Any]:
        """Before a task: the past episodes that bear on it (outcome, score, the steps they
        took), the patterns learned from its kind of task (the steps that succeed, where
        choices went wrong, how errors were recovered from) and the memories relevant to it."""
        found = guarded(lambda: backend.context(task, namespace, k=k))
        return {
            "episodes": [e.to_json() for e in found.episodes],
            "patterns": [p.to_json() for p in found.patterns],
            "memories": [_hit_json(h) for h in found.memories],
        }

    @server.tool()
    def recover_from_error(error: str, namespace: str, k: int = 3) -> list[dict[str, Any]]:
        """When a step fails: how past episodes recovered from the same error (numbers, ids
        and quoted values aside), the steps taken, how often, and how often it worked."""
        found = guarded(lambda: backend.patterns.find(namespace, error=error, k=k))
        return [p.to_json() for p in found]


def _hit_json(h: Hit) -> dict[str, Any]:
    """A hit as a model reads it: no channel scores or provenance, which only cost tokens."""
    return {
        "memory_id": h.memory_id,
        "text": h.text,
        "score": round(h.score, 4),
        "occurred_at": None if h.occurred_at is None else h.occurred_at.isoformat(),
        "category": h.category,
        "status": h.status,
    }


def run(settings: Settings, *, url: str | None = None, api_key: str | None = None) -> None:
    backend: Memory | RemoteMemory
    if url is not None:
        backend = RemoteMemory(url, api_key)
    else:
        backend = running_server(settings.home) or Memory(settings, actor="mcp")
    try:
        build(backend).run("stdio")
    finally:
        backend.close()
