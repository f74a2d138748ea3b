"""The pipeline: the Memory API, the CLI, the runners, service and ingest.

`Memory` is imported on first use, so that a process needing only a light part (the HTTP
client, the query RPC actor) does not load DuckDB, FAISS and the ONNX runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.memory import Memory


def __getattr__(name: str) -> Any:
    if name == "Memory":
        from pipeline.memory import Memory

        return Memory
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


__all__ = ["Memory"]
