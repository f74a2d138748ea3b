"""Errors of the projections (DuckDB, FAISS).

MnemoError                     (eventlog.errors)
└── ProjectionError            a projection cannot be read, applied or rebuilt
"""

from __future__ import annotations

from mnemoflow.eventlog.errors import MnemoError


class ProjectionError(MnemoError):
    """A projection cannot be read, applied or rebuilt."""
