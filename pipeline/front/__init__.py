"""mnemoflow: long-term memory for AI agents.

The front door: ``from mnemoflow import Memory``, and the errors a caller catches (every one
derives from ``MnemoError``). This file is installed as the package ``mnemoflow`` itself
(pyproject's ``package-dir``); the layers are its subpackages ``mnemoflow.eventlog``,
``mnemoflow.projections``, ``mnemoflow.actors`` and ``mnemoflow.pipeline``.

``Memory`` is imported on first use, so that a process needing only a light part (the HTTP
client, the query RPC actor, an error class) does not load DuckDB, FAISS and the ONNX runtime.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from mnemoflow.pipeline.errors import (
    AppendFailed,
    ConfigError,
    CorruptSegment,
    ErasureUnfinished,
    HomeError,
    LogError,
    LogLocked,
    MemoryGone,
    MemoryNotFound,
    MnemoError,
    NamespaceNotFound,
    PipelineError,
    ProjectionLag,
    StorageError,
    ValidationError,
)

if TYPE_CHECKING:
    from mnemoflow.pipeline.memory import Memory

try:
    __version__ = version("mnemoflow")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"


def __getattr__(name: str) -> Any:
    if name == "Memory":
        from mnemoflow.pipeline.memory import Memory

        return Memory
    raise AttributeError(f"module 'mnemoflow' has no attribute {name!r}")


__all__ = [
    "AppendFailed",
    "ConfigError",
    "CorruptSegment",
    "ErasureUnfinished",
    "HomeError",
    "LogError",
    "LogLocked",
    "Memory",
    "MemoryGone",
    "MemoryNotFound",
    "MnemoError",
    "NamespaceNotFound",
    "PipelineError",
    "ProjectionLag",
    "StorageError",
    "ValidationError",
    "__version__",
]
