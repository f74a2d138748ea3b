"""Errors of the pipeline layer (configuration, the Memory API, the CLI).

MnemoError                        (eventlog.errors, the project's base)
├── LogError …                    everything the log refuses, re-exported here
│   └── ValidationError
│       └── ImportRejected        a row of an import cannot be applied (named by its line)
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
    EpisodeClosed,
    LogError,
    LogLocked,
    MemoryGone,
    MemoryIdTaken,
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
    "EpisodeClosed",
    "ErasureUnfinished",
    "HomeError",
    "ImportRejected",
    "LogError",
    "LogLocked",
    "MemoryGone",
    "MemoryIdTaken",
    "MemoryNotFound",
    "MnemoError",
    "NamespaceNotFound",
    "PipelineError",
    "ProjectionLag",
    "StorageError",
    "ValidationError",
]


class ImportRejected(ValidationError):
    """A row of an import cannot be applied; the message names the row (its line in the
    file). The rows before it are kept; nothing of it or after it was applied."""


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
