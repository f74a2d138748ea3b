"""The settings and projections that go with a generation of derived streams (see
`mnemoflow.eventlog.generations`): the current generation was derived with its own embedder
settings, which must embed queries and new memories too, and has projections of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnemoflow.pipeline.api.config import Settings

PROJECTIONS_DIR = "projections"


def with_generation(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with a generation's own sections laid over (only `embedder` today)."""
    embedder = overrides.get("embedder")
    if not embedder:
        return settings
    merged = settings.embedder.model_validate(settings.embedder.model_dump() | embedder)
    return settings.model_copy(update={"embedder": merged})


def projections_directory(home: Path, generation: int) -> Path:
    return home / (PROJECTIONS_DIR if generation == 1 else f"{PROJECTIONS_DIR}.{generation}")
