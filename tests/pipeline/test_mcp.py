"""`mnemo mcp` with a real MCP client session over stdio (the `mcp` package's client)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "add_memory",
    "search_memory",
    "list_memories",
    "get_memory",
    "update_memory",
    "delete_memory",
    "give_feedback",
    "audit_memory",
    "list_contradictions",
    "start_episode",
    "log_step",
    "complete_episode",
    "get_task_context",
    "check_action",
    "recover_from_error",
}


def _payload(result: Any) -> Any:
    if result.structured_content is not None:
        content = result.structured_content
        return content.get("result", content) if isinstance(content, dict) else content
    return json.loads(result.content[0].text)


async def _session(home: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "mnemoflow.pipeline.cli", "mcp", "--home", str(home)],
        cwd=str(ROOT),
        env={**os.environ, "MNEMO_LOGGING__LEVEL": "warning"},
    )
    seen: dict[str, Any] = {}
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        seen["instructions"] = init.instructions
        listed = await session.list_tools()
        seen["tools"] = {t.name: t for t in listed.tools}
        added = await session.call_tool(
            "add_memory",
            {
                "text": "Priya is allergic to peanuts.",
                "namespace": "priya",
                "metadata": {"src": "chat"},
            },
        )
        memory_id = _payload(added)["memory_id"]
        await session.call_tool(
            "add_memory", {"text": "Priya runs marathons in autumn.", "namespace": "priya"}
        )
        found = await session.call_tool(
            "search_memory", {"query": "What is Priya allergic to?", "namespace": "priya", "k": 2}
        )
        seen["search"] = _payload(found)
        await session.call_tool(
            "update_memory",
            {"memory_id": memory_id, "text": "Priya is allergic to peanuts and shellfish."},
        )
        seen["get"] = _payload(await session.call_tool("get_memory", {"memory_id": memory_id}))
        await session.call_tool("give_feedback", {"memory_id": memory_id, "useful": True})
        seen["list"] = _payload(
            await session.call_tool("list_memories", {"namespace": "priya", "limit": 10})
        )
        seen["audit"] = _payload(await session.call_tool("audit_memory", {"memory_id": memory_id}))
        for text in ("Priya: I like jazz.", "Priya: I don't like jazz anymore."):
            await session.call_tool("add_memory", {"text": text, "namespace": "priya"})
        seen["contradictions"] = _payload(
            await session.call_tool("list_contradictions", {"namespace": "priya"})
        )
        for seconds in (3, 12):  # twice the same error, recovered from the same way
            started = _payload(
                await session.call_tool(
                    "start_episode",
                    {"task": "Plan Priya's marathon training", "namespace": "priya"},
                )
            )
            episode = started["episode_id"]
            for step in (
                {"tool": "calendar", "action": "block mornings", "error": f"503 after {seconds}s"},
                {"tool": "auth", "action": "refresh token"},
                {"tool": "calendar", "action": "block mornings"},
            ):
                await session.call_tool("log_step", {"episode_id": episode, **step})
            await session.call_tool("complete_episode", {"episode_id": episode, "success": True})
        seen["recover"] = _payload(
            await session.call_tool(
                "recover_from_error", {"error": "503 after 40s", "namespace": "priya"}
            )
        )
        seen["context"] = _payload(
            await session.call_tool(
                "get_task_context", {"task": "plan a marathon training", "namespace": "priya"}
            )
        )
        seen["check"] = _payload(
            await session.call_tool(
                "check_action", {"action": "kubectl delete namespace prod", "namespace": "priya"}
            )
        )
        seen["closed"] = await session.call_tool(
            "log_step", {"episode_id": episode, "tool": "calendar", "action": "again"}
        )
        await session.call_tool("delete_memory", {"memory_id": memory_id, "reason": "test"})
        seen["after_delete"] = _payload(
            await session.call_tool("search_memory", {"query": "allergic", "namespace": "priya"})
        )
        seen["bad"] = await session.call_tool("add_memory", {"text": "", "namespace": "priya"})
        seen["unknown"] = await session.call_tool("get_memory", {"memory_id": "0" * 32})
        seen["memory_id"] = memory_id
    return seen


def test_an_mcp_client_uses_every_tool(tmp_path: Path) -> None:
    seen = asyncio.run(asyncio.wait_for(_session(tmp_path / "home"), timeout=240))
    assert set(seen["tools"]) == TOOLS
    assert seen["check"]["decision"] == "allow" and seen["check"]["matched"] == []
    for past in seen["context"]["episodes"]:
        assert past["outcome"] == "success" and past["steps"][0]["action"] == "block mornings"
    assert len(seen["context"]["episodes"]) == 2
    assert seen["context"]["memories"]  # Priya's marathons
    sequence, recovery = seen["context"]["patterns"]
    assert sequence["kind"] == "tool_sequence" and sequence["support"] == 2
    assert sequence["steps"] == ["auth:refresh token", "calendar:block mornings"]
    (found,) = seen["recover"]
    assert found == recovery | {"relevance": None}
    assert found["error"] == "<n> after <n>s" and found["success_rate"] == 1.0
    assert found["recovery"] == ["auth:refresh token", "calendar:block mornings"]
    assert seen["closed"].is_error and "EpisodeClosed" in seen["closed"].content[0].text
    (contradiction,) = seen["contradictions"]
    assert contradiction["memory"]["text"] == "Priya: I don't like jazz anymore."
    assert contradiction["contradicts"]["text"] == "Priya: I like jazz."
    assert contradiction["superseded"] == contradiction["contradicts"]["memory_id"]
    for tool in seen["tools"].values():
        assert tool.description and len(tool.description) > 30
        assert tool.input_schema["type"] == "object"
    assert set(seen["tools"]["add_memory"].input_schema["required"]) == {"text", "namespace"}
    assert "namespace" in seen["instructions"]
    assert seen["search"][0]["memory_id"] == seen["memory_id"]
    assert seen["get"]["text"] == "Priya is allergic to peanuts and shellfish."
    assert seen["get"]["version"] == 2
    assert len(seen["list"]) == 2
    inputs = [e["kind"] for e in seen["audit"] if e["stream"] == "input"]
    assert inputs == ["memory.stored", "memory.updated", "feedback.recorded"]
    assert {"extracted", "embedded"} <= {e["stream"] for e in seen["audit"]}
    assert seen["memory_id"] not in {h["memory_id"] for h in seen["after_delete"]}
    assert seen["bad"].is_error and "ValidationError" in seen["bad"].content[0].text
    assert seen["unknown"].is_error and "MemoryNotFound" in seen["unknown"].content[0].text
