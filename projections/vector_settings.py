"""The ``[vectors]`` settings, apart from FAISS (the settings are read where FAISS is not)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class VectorSettings(BaseModel):
    """The ``[vectors]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    approximate_above: int = Field(50_000, ge=1, description="per namespace; flat (exact) below")
    approximate: Literal["ivf", "hnsw"] = Field("ivf", description="the index above it")
    nprobe: int = Field(16, ge=1, description="IVF lists a search scans")
    hnsw_m: int = Field(16, ge=4)
    ef_search: int = Field(128, ge=8, description="HNSW candidates a search visits")
    snapshot_every: int = Field(50_000, ge=1, description="events applied between snapshots")
    storage: Literal["fp32", "fp16"] = Field("fp16", description="vector codes in FAISS")
