"""Moving data out and in: `GET /export` streams a `mnemoflow.export` (an admin key: any
namespaces; any other key: the namespaces it names, each in its scope), `POST /import` applies
export rows (admin keys only: an import chooses memory ids and times)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Query
from fastapi.responses import StreamingResponse

from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.pipeline.api.apikeys import ApiKey
from mnemoflow.pipeline.api.errors import ImportRejected
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.transfer import row_of
from mnemoflow.pipeline.http.guard import Guard
from mnemoflow.pipeline.http.models import ImportIn, ImportOut

EXPORT_TYPE = "application/x-ndjson"


def add_routes(app: FastAPI, memory: Memory, guard: Guard) -> None:
    authorised = Depends(guard.caller)
    namespaces = Query(None, description="namespaces (all: an admin key only)")
    as_of_query = Query(None, description="an input position or an ISO 8601 time")

    @app.get(
        "/export",
        tags=["transfer"],
        response_class=StreamingResponse,
        responses={200: {"content": {EXPORT_TYPE: {}}}},
    )
    def export(
        ns: list[str] | None = namespaces,
        as_of: str | None = as_of_query,
        key: ApiKey | None = authorised,
    ) -> StreamingResponse:
        """Stores, updates, forgets and feedback, in clear, as JSON Lines (see the README's
        "Moving data in and out"), streamed."""
        if not ns:
            guard.admin(key)
        for name in ns or ():
            guard.allow(key, name)
        lines = memory.export(ns or None, as_of)
        first = next(lines)  # an unknown namespace or a bad as_of fails here, as a 4xx
        body = (json.dumps(d, ensure_ascii=False) + "\n" for d in itertools.chain([first], lines))
        return StreamingResponse(body, media_type=EXPORT_TYPE)

    @app.post("/import", response_model=ImportOut, tags=["transfer"])
    def import_(body: ImportIn, key: ApiKey | None = authorised) -> dict[str, Any]:
        """Apply export rows in order, with their memory ids and times (admin). A row already
        imported adds nothing; a bad row is refused (400, naming its line: `lines`, else its
        place in `rows`) after the rows before it."""
        guard.admin(key)
        if body.lines and len(body.lines) != len(body.rows):
            raise ValidationError(f"{len(body.lines)} lines for {len(body.rows)} rows")
        report = memory.import_rows(_numbered(body), body.ns_map)
        return {
            "rows": report.rows,
            "added": report.added,
            "present": report.present,
            "seconds": report.seconds,
        }


def _numbered(body: ImportIn) -> Iterator[tuple[int, Any]]:
    for i, doc in enumerate(body.rows):
        n = body.lines[i] if body.lines else i + 1
        try:
            row = row_of(doc)
        except ValidationError as exc:
            raise ImportRejected(f"line {n}: {exc}") from None
        yield n, row
