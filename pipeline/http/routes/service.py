"""The service's own routes: health and readiness (no key), the hash-chain check and the
status (admin), Prometheus metrics (any valid key: totals only)."""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import Depends, FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST

from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.derivation import requested
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import report_json
from mnemoflow.pipeline.http.guard import Guard, HttpError
from mnemoflow.pipeline.http.metrics import Metrics, Status
from mnemoflow.pipeline.http.models import HealthOut, RederiveIn, ReportOut


class Rederiving(Protocol):
    """What re-derives beside the service (`ServiceRederivation`)."""

    def start(
        self, actor: str, overrides: dict[str, Any], *, drop_old: bool = False
    ) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...


def add_routes(
    app: FastAPI,
    memory: Memory,
    guard: Guard,
    metrics: Metrics,
    status: Status,
    rederiving: Rederiving | None = None,
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

    @app.post("/rederive", tags=["service"])
    def rederive(body: RederiveIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Replay the history through a new model as a new generation, beside the running
        service, then switch to it (admin). Naming no model resumes the one under way."""
        admin(key)
        if rederiving is None:
            raise HttpError(409, "re-derivation runs in `mnemo serve` only", "NotAService")
        overrides = requested(
            memory.settings,
            body.actor,
            model=body.model,
            tokenizer=body.tokenizer,
            model_id=body.model_id,
            llm_model=body.llm_model,
            llm_base_url=body.llm_base_url,
        )
        return rederiving.start(body.actor, overrides, drop_old=body.drop_old)

    @app.get("/rederive", tags=["service"])
    def rederive_status(key: ApiKey | None = authorised) -> dict[str, Any]:
        """The re-derivation's state: running (with its progress), switched, failed (admin)."""
        admin(key)
        if rederiving is None:
            raise HttpError(409, "re-derivation runs in `mnemo serve` only", "NotAService")
        return rederiving.status()

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
