"""The service's own routes: health and readiness (no key), the hash-chain check and the
status (admin), Prometheus metrics (any valid key: totals only)."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import report_json
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.metrics import Metrics, Status
from mnemoflow.pipeline.http.models import HealthOut, ReportOut


def add_routes(
    app: FastAPI, memory: Memory, guard: Guard, metrics: Metrics, status: Status
) -> None:
    authorised = Depends(guard.caller)
    admin = guard.admin

    @app.get("/health", response_model=HealthOut, tags=["service"])
    def health() -> dict[str, Any]:
        """Liveness, and readiness: whether recall sees every acknowledged write yet (after a
        restart the projections catch up with the log). Answers without a key."""
        last = memory.log.input.last_position
        return {
            "status": "ok",
            "input_position": last,
            "projected_position": memory.runtime.projector.duck.applied(INPUT_STREAM),
            "ready": memory.runtime.sees(last),
        }

    @app.get("/verify", response_model=ReportOut, tags=["service"])
    def verify(key: ApiKey | None = authorised) -> dict[str, Any]:
        """Check every stream's hash chain (admin)."""
        admin(key)
        return report_json(memory.verify())

    @app.get("/stats", tags=["service"])
    def stats(key: ApiKey | None = authorised) -> dict[str, Any]:
        """Streams, actors, projections, memory counts, disk (admin)."""
        admin(key)
        return status()

    @app.get(
        "/metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    def prometheus(key: ApiKey | None = authorised) -> Response:
        """Prometheus text format: request counts and latency histograms by route, recall
        latency, events per stream, actor positions, lag and throughput, projection lag,
        memories, disk. Totals only, no namespace in them: any valid key may read them (a
        scraper's need not be an admin's)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
