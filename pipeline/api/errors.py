"""Errors of the pipeline layer (configuration, the Memory API, the CLI).

MnemoError                        (eventlog.errors, the project's base)
├── LogError …                    everything the log refuses, re-exported here
└── PipelineError
    ├── ConfigError               a configuration file or environment override is invalid
    ├── HomeError                 the data directory cannot be used
    ├── ProjectionLag             recall waited for a position longer than it may
    └── ErasureUnfinished         erased in the log; the projections' part is still owed
"""

from __future__ import annotations

from mnemoflow.eventlog.errors import (
    AppendFailed,
    CorruptSegment,
    LogError,
    LogLocked,
    MemoryGone,
    MemoryNotFound,
    MnemoError,
    NamespaceNotFound,
    StorageError,
    ValidationError,
)

__all__ = [
    "AppendFailed",
    "ConfigError",
    "CorruptSegment",
    "ErasureUnfinished",
    "HomeError",
    "LogError",
    "LogLocked",
    "MemoryGone",
    "MemoryNotFound",
    "MnemoError",
    "NamespaceNotFound",
    "PipelineError",
    "ProjectionLag",
    "StorageError",
    "ValidationError",
]


class PipelineError(MnemoError):
    """The pipeline layer could not do what was asked."""


class ConfigError(PipelineError):
    """A configuration file or an environment override is invalid; the message names it."""


class HomeError(PipelineError):
    """The data directory cannot be created or used."""


class ProjectionLag(PipelineError):
    """Read-your-writes waited longer than allowed for the projections to reach a position."""


class ErasureUnfinished(PipelineError):
    """The erasure is in the log (the namespace's key destroyed), but the projections could
    not yet drop or rewrite its rows (a full disk, say): the next catch-up that succeeds
    finishes it. Erasing again is safe."""
