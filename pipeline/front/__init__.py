"""mnemoflow: long-term memory for AI agents.

The front door: ``from mnemoflow import Memory`` (embedded, or ``Memory.connect`` to a
service), ``Service`` and ``load_settings`` to run one in a program, and the errors a caller
catches (every one derives from ``MnemoError``).

This file is installed as the package ``mnemoflow`` itself (pyproject's ``package-dir``); the
layers are its subpackages ``mnemoflow.eventlog``, ``mnemoflow.projections``,
``mnemoflow.actors`` and ``mnemoflow.pipeline``. ``Memory``, ``Service`` and
``load_settings`` are imported on first use, so that a process needing only a light part (the
HTTP client, the query RPC actor, an error class) does not load DuckDB, FAISS and the ONNX
runtime.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from mnemoflow.pipeline.api.errors import (
    AppendFailed,
    ConfigError,
    CorruptSegment,
    EpisodeClosed,
    ErasureUnfinished,
    HomeError,
    ImportRejected,
    LogError,
    LogLocked,
    MemoryGone,
    MemoryIdTaken,
    MemoryNotFound,
    MnemoError,
    NamespaceNotFound,
    PipelineError,
    ProjectionLag,
    StorageError,
    ValidationError,
)

if TYPE_CHECKING:
    from mnemoflow.pipeline.api.config import load_settings
    from mnemoflow.pipeline.api.memory import Memory
    from mnemoflow.pipeline.api.record import MemoryRecord
    from mnemoflow.pipeline.service.service import Service

try:
    __version__ = version("mnemoflow")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"


_LAZY = {
    "Memory": "mnemoflow.pipeline.api.memory",
    "MemoryRecord": "mnemoflow.pipeline.api.record",
    "Service": "mnemoflow.pipeline.service.service",
    "load_settings": "mnemoflow.pipeline.api.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mnemoflow' has no attribute {name!r}")


__all__ = [
    "AppendFailed",
    "ConfigError",
    "CorruptSegment",
    "EpisodeClosed",
    "ErasureUnfinished",
    "HomeError",
    "ImportRejected",
    "LogError",
    "LogLocked",
    "Memory",
    "MemoryGone",
    "MemoryIdTaken",
    "MemoryNotFound",
    "MemoryRecord",
    "MnemoError",
    "NamespaceNotFound",
    "PipelineError",
    "ProjectionLag",
    "Service",
    "StorageError",
    "ValidationError",
    "__version__",
    "load_settings",
]
