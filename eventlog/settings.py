"""Settings of the event log: the ``[log]`` section of the configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LogSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    segment_bytes: int = Field(8 * 1024 * 1024, ge=4096, description="seal segments at this size")
    max_text_bytes: int = Field(64 * 1024, ge=1, description="largest text, UTF-8 encoded")
    max_metadata_bytes: int = Field(16 * 1024, ge=2, description="largest metadata, as JSON")
    max_batch_events: int = Field(100_000, ge=1, description="most events in one append call")
