"""The ``[server]`` section (apart from the server, so settings load without FastAPI)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)
    max_body_bytes: int = Field(1_048_576, ge=1024, description="larger bodies get 413")
    rate_per_second: float = Field(200.0, gt=0, description="requests per key, sustained")
    burst: int = Field(400, ge=1, description="requests per key, at once")
    allowed_hosts: tuple[str, ...] = Field(
        (),
        description="Host names answered besides loopback when keys are required (empty: "
        "any); a server started --open answers to loopback names only",
    )
