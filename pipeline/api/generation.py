"""The settings and projections that go with a generation of derived streams (see
`mnemoflow.eventlog.generations`): the current generation was derived with its own embedder
settings (the model that must embed queries and new memories too, the extractor's LLM), and
has projections of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnemoflow.pipeline.api.config import Settings

PROJECTIONS_DIR = "projections"


SECTIONS = ("embedder", "llm")  # the settings a generation may carry


def with_generation(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """`settings` with a generation's own sections laid over (the embedder's model, the
    extractor's LLM)."""
    update = {}
    for section in SECTIONS:
        if overrides.get(section):
            current = getattr(settings, section)
            update[section] = current.model_validate(current.model_dump() | overrides[section])
    return settings.model_copy(update=update) if update else settings


def projections_directory(home: Path, generation: int) -> Path:
    return home / (PROJECTIONS_DIR if generation == 1 else f"{PROJECTIONS_DIR}.{generation}")
