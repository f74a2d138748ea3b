"""The ``[query]`` settings and the channel names, apart from the query engine (read where
DuckDB and FAISS are not loaded)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SEARCH_CHANNELS = (
    "semantic",
    "semantic_context",
    "lexical",
    "lexical_context",
    "entity",
    "temporal",
)
# Re-ranking channels: they score the fused candidates rather than search.
CHANNELS = (*SEARCH_CHANNELS, "graph", "speaker")


class QuerySettings(BaseModel):
    """The ``[query]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    candidates: int = Field(60, ge=1, le=10_000, description="per channel")
    fusion: Literal["zscore", "rrf"] = "zscore"
    rrf_k: int = Field(60, ge=1)
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "semantic": 1.0,
            "semantic_context": 1.0,
            "lexical": 1.0,
            "lexical_context": 1.0,
            "entity": 0.25,
            "temporal": 1.5,
            "graph": 0.1,
            "speaker": 3.0,
        }
    )
    min_spread: dict[str, float] = Field(
        default_factory=lambda: {
            "semantic": 0.05,
            "semantic_context": 0.05,
            "lexical": 1.0,
            "lexical_context": 1.0,
            "entity": 0.5,
            "temporal": 0.0,
        },
        description="per channel: score differences below this are noise",
    )
    neighbor_weight: float = Field(0.5, ge=0, le=2)
    feedback_weight: float = Field(1.0, ge=0, le=5)
    graph_seeds: int = Field(10, ge=1, le=1000, description="top memories activation spreads from")
    superseded_penalty: float = Field(1.0, ge=0, le=10)
    decay_weight: float = Field(0.1, ge=0, le=5)
    max_k: int = Field(1000, ge=1)
    wait_timeout: float = Field(
        10.0, gt=0, le=600, description="seconds recall(min_position=...) may wait"
    )
