"""Export and import: what the outside world said to one data directory, carried to another.

The export format (`mnemoflow.export`, version 1) is JSON Lines, one object a line:

    {"format": "mnemoflow.export", "version": 1, "exported_at": ISO, "as_of": POSITION,
     "namespaces": [NAME, ...]}
    {"op": "store", "id": ID, "ns": NAME, "memory_id": ID, "occurred_at": ISO,
     "recorded_at": ISO, "text": TEXT, "metadata": {...}}
    {"op": "update", ... "text": TEXT, "metadata": {...} or null (keeps the previous)}
    {"op": "forget", ... "reason": TEXT or null}
    {"op": "feedback", ... "useful": true/false, "note": TEXT or null}
    {"op": "episode.start", ... "memory_id": EPISODE_ID, "task": TEXT, "domain", "language",
     "tags": [...]}
    {"op": "episode.step", ... "tool", "action", "error" (set: it failed), "latency_ms",
     "tokens", "observation"}
    {"op": "episode.complete", ... "success": true/false, "score" (null: computed from the
     steps), "result", "error"}
    {"end": true, "rows": N}

Rows are input events, oldest first, in clear; `id` is the event's id where it was exported
(an import keys it again, so importing twice adds nothing), `occurred_at` is on its writer's
clock (the offset a writer gave is kept). What the actors derived is not exported: the
importing side derives it again from the same inputs. Erased namespaces are absent, and
nothing of theirs (not even their name) is in an export made after the erase.

mem0's export (`get_all`: a list of {id, memory, user_id, agent_id, run_id, metadata,
created_at, updated_at}, or an object holding it under "results" or "memories") imports as
stores: the id kept, the namespace from user_id (else agent_id, else run_id, else the one
given), the time from created_at, nested metadata values as their JSON text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, StrictBool, TypeAdapter

from mnemoflow.eventlog import EventLog, InputLog, Receipt, StoreRequest
from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.episodes import (
    EpisodeCompleted,
    EpisodeLog,
    EpisodeStarted,
    EpisodeStep,
)
from mnemoflow.eventlog.errors import (
    EpisodeClosed,
    MemoryGone,
    MemoryIdTaken,
    MemoryNotFound,
    NamespaceNotFound,
    ValidationError,
)
from mnemoflow.eventlog.payloads import (
    FeedbackRecorded,
    MemoryForgotten,
    MemoryStored,
    MemoryUpdated,
    Metadata,
    writer_time,
)
from mnemoflow.eventlog.schema import (
    EPISODE_COMPLETED,
    EPISODE_STARTED,
    EPISODE_STEP,
    FEEDBACK_RECORDED,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
    Record,
)
from mnemoflow.pipeline.api.errors import ImportRejected

FORMAT = "mnemoflow.export"
VERSION = 1
IMPORTED = "import:"  # the prefix of the event id an import chooses for a row (then keyed)


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=200)
    ns: str
    memory_id: str
    occurred_at: datetime
    recorded_at: datetime | None = None  # where it was exported: shown, not restored


class StoreRow(_Row):
    op: Literal["store"]
    text: str
    metadata: Metadata = {}


class UpdateRow(_Row):
    op: Literal["update"]
    text: str
    metadata: Metadata | None = None


class ForgetRow(_Row):
    op: Literal["forget"]
    reason: str | None = None


class FeedbackRow(_Row):
    op: Literal["feedback"]
    useful: StrictBool
    note: str | None = None


class EpisodeStartRow(_Row):
    op: Literal["episode.start"]
    task: str
    domain: str | None = None
    language: str | None = None
    tags: list[str] = []


class EpisodeStepRow(_Row):
    op: Literal["episode.step"]
    tool: str
    action: str
    error: str | None = None  # set: the step failed
    latency_ms: float | None = None
    tokens: int | None = None
    observation: str | None = None


class EpisodeCompleteRow(_Row):
    op: Literal["episode.complete"]
    success: StrictBool
    score: float | None = None  # kept when it was given; recomputed from the steps if not
    result: str | None = None
    error: str | None = None


AnyRow = (
    StoreRow
    | UpdateRow
    | ForgetRow
    | FeedbackRow
    | EpisodeStartRow
    | EpisodeStepRow
    | EpisodeCompleteRow
)
Row = Annotated[AnyRow, Field(discriminator="op")]
_ROW: TypeAdapter[AnyRow] = TypeAdapter(Row)
_OPS = {
    MEMORY_STORED: "store",
    MEMORY_UPDATED: "update",
    MEMORY_FORGOTTEN: "forget",
    FEEDBACK_RECORDED: "feedback",
    EPISODE_STARTED: "episode.start",
    EPISODE_STEP: "episode.step",
    EPISODE_COMPLETED: "episode.complete",
}


def row_of(doc: object) -> AnyRow:
    """One row from its JSON object; a clear error (pydantic's first complaint) if it is not."""
    try:
        return _ROW.validate_python(doc)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][1:] if first["loc"][:1] and first["loc"][0] in _OPS.values() else ()
        where = ".".join(str(p) for p in loc or first["loc"]) or "row"
        raise ValidationError(f"{where}: {first['msg']}") from None


# -- export ------------------------------------------------------------------------------


def export_rows(
    log: EventLog, inputs: InputLog, namespaces: Sequence[str] | None, stop: int
) -> Iterator[dict[str, Any]]:
    """The header, every input event of `namespaces` (all: None) up to input position `stop`
    as a row, and the end line with the count."""
    chosen = sorted(inputs.namespaces()) if namespaces is None else list(dict.fromkeys(namespaces))
    names: dict[str, str] = {}
    for name in chosen:
        namespace_id = inputs.namespace_id(name)
        if namespace_id is None:
            raise NamespaceNotFound(f"no namespace {name!r} in this log")
        names[namespace_id] = name
    yield {
        "format": FORMAT,
        "version": VERSION,
        "exported_at": datetime.now(UTC).isoformat(),
        "as_of": stop,
        "namespaces": chosen,
    }
    only = next(iter(names)) if len(names) == 1 else None
    count = 0
    for record in log.input.read(1, stop, namespace=only):
        if record.kind in _OPS and record.namespace in names:
            row = _export_row(log, record, names[record.namespace])
            if row is not None:
                count += 1
                yield row
    yield {"end": True, "rows": count}


def _export_row(log: EventLog, record: Record, name: str) -> dict[str, Any] | None:
    payload = log.open_payload(record)
    if payload is None:  # its key was destroyed meanwhile: erased
        return None
    occurred = writer_time(record.occurred_at or record.recorded_at, payload)
    row: dict[str, Any] = {
        "op": _OPS[record.kind],
        "id": record.event_id,
        "ns": name,
        "memory_id": record.memory_id,
        "occurred_at": occurred.isoformat(),
        "recorded_at": record.recorded_at.isoformat(),
    }
    match payload:
        case MemoryStored() | MemoryUpdated():
            row |= {"text": payload.text, "metadata": payload.metadata}
        case MemoryForgotten():
            row["reason"] = payload.reason
        case FeedbackRecorded():
            row |= {"useful": payload.useful, "note": payload.note}
        case EpisodeStarted():
            row |= {
                "task": payload.task,
                "domain": payload.domain,
                "language": payload.language,
                "tags": payload.tags,
            }
        case EpisodeStep():
            row |= {
                "tool": payload.tool,
                "action": payload.action,
                "error": payload.error,
                "latency_ms": payload.latency_ms,
                "tokens": payload.tokens,
                "observation": payload.observation,
            }
        case EpisodeCompleted():
            row |= {
                "success": payload.success,
                "score": payload.score if payload.score_given else None,
                "result": payload.result,
                "error": payload.error,
            }
    return row


# -- reading an import -------------------------------------------------------------------

Numbered = tuple[int, AnyRow]


def export_lines(lines: Iterable[str | bytes], first_line: int = 1) -> Iterator[Numbered]:
    """The rows of an export, numbered by their line; the header must come first, and an
    export that stops before its end line is refused there (after the rows it did hold)."""
    rows = 0
    header = False
    for n, line in enumerate(lines, first_line):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except ValueError as exc:
            raise ImportRejected(f"line {n}: not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ImportRejected(f"line {n}: not a JSON object")
        if not header:
            _check_header(doc, n)
            header = True
        elif "end" in doc:
            if doc.get("rows") != rows:
                raise ImportRejected(f"line {n}: the end says {doc.get('rows')} rows, read {rows}")
            return
        else:
            rows += 1
            yield n, _numbered_row(doc, n)
    if not header:
        raise ImportRejected("the file is empty: no export header")
    raise ImportRejected(f"the export stops after {rows} rows without its end line: cut short?")


def _check_header(doc: dict[str, Any], n: int) -> None:
    if doc.get("format") != FORMAT:
        raise ImportRejected(f'line {n}: not a mnemoflow export (no "format": {FORMAT!r})')
    version = doc.get("version")
    if not isinstance(version, int) or version < 1:
        raise ImportRejected(f"line {n}: the export's version is not a positive integer")
    if version > VERSION:
        raise ImportRejected(
            f"line {n}: export version {version} is newer than this mnemoflow reads ({VERSION})"
        )


def _numbered_row(doc: object, n: int) -> AnyRow:
    try:
        return row_of(doc)
    except ValidationError as exc:
        raise ImportRejected(f"line {n}: {exc}") from None


def source_rows(path: Path, namespace: str | None = None) -> Iterator[Numbered] | None:
    """The rows of a file that is an export or a mem0 export; None: it is neither (it may
    be one of the formats `mnemo ingest` reads)."""
    try:
        with path.open("rb") as f:
            first = next((line for line in f if line.strip()), b"")
        if looks_like_export(first):
            return _file_rows(path)
        if path.suffix.lower() == ".json":
            doc = json.loads(path.read_bytes())
            if looks_like_mem0(doc):
                return mem0_rows(doc, namespace)
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from exc
    except ValueError:
        pass  # not JSON: not ours to read
    return None


def _file_rows(path: Path) -> Iterator[Numbered]:
    with path.open("rb") as f:
        yield from export_lines(f)


def looks_like_export(first_line: str | bytes) -> bool:
    try:
        doc = json.loads(first_line)
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def mem0_rows(doc: object, namespace: str | None = None) -> Iterator[Numbered]:
    """Stores from mem0's export, numbered by their place in its list (1 first)."""
    items = doc
    if isinstance(doc, dict):
        items = doc.get("results", doc.get("memories"))
    if not isinstance(items, list):
        raise ImportRejected("not a mem0 export: a list of memories, or one under 'results'")
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ImportRejected(f"memory {n}: not a JSON object")
        yield n, _mem0_row(item, n, namespace)


def looks_like_mem0(doc: object) -> bool:
    items = doc.get("results", doc.get("memories")) if isinstance(doc, dict) else doc
    return (
        isinstance(items, list)
        and bool(items)
        and all(isinstance(i, dict) and "memory" in i and "id" in i for i in items)
    )


def _mem0_row(item: dict[str, Any], n: int, namespace: str | None) -> StoreRow:
    owner = item.get("user_id") or item.get("agent_id") or item.get("run_id") or namespace
    if not owner:
        raise ImportRejected(f"memory {n}: no user_id, agent_id or run_id, and no --ns given")
    metadata = {
        str(k): v if v is None or isinstance(v, str | int | float | bool) else json.dumps(v)
        for k, v in (item.get("metadata") or {}).items()
    }
    if item.get("categories"):
        metadata.setdefault("categories", json.dumps(item["categories"]))
    occurred = item.get("created_at") or item.get("updated_at")
    try:
        return StoreRow(
            op="store",
            id=f"mem0:{item.get('id')}",
            ns=str(owner),
            memory_id=str(item.get("id")),
            occurred_at=occurred or datetime.now(UTC),
            text=item.get("memory"),  # validated here
            metadata=metadata,
        )
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ImportRejected(f"memory {n}: {where}: {first['msg']}") from None


# -- applying an import ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    rows: int  # rows read
    added: int  # events appended
    present: int  # rows this log already held (an import run again)
    seconds: float

    def __add__(self, other: ImportReport) -> ImportReport:
        return ImportReport(
            self.rows + other.rows,
            self.added + other.added,
            self.present + other.present,
            round(self.seconds + other.seconds, 3),
        )


def import_rows(
    inputs: InputLog,
    rows: Iterable[Numbered],
    ns_map: Mapping[str, str] | None = None,
    *,
    batch: int = 500,
) -> ImportReport:
    """Append the rows in order (stores in batches), each under its mapped namespace, with
    its memory id and time; a row that cannot be applied stops the import with an error
    naming it, after the rows before it."""
    began = time.perf_counter()
    mapping = dict(ns_map or {})
    for new in mapping.values():
        check.namespace(new)
    counts = [0, 0, 0]  # rows, added, present
    stores: list[tuple[int, str, StoreRequest]] = []
    try:
        for n, row in rows:
            counts[0] += 1
            namespace = mapping.get(row.ns, row.ns)
            if isinstance(row, StoreRow):
                stores.append((n, row.id, _store_request(row, namespace, n)))
                if len(stores) >= batch:
                    _tally(counts, *_flush(inputs, stores))
            else:
                _tally(counts, *_flush(inputs, stores))
                if isinstance(row, EpisodeStartRow | EpisodeStepRow | EpisodeCompleteRow):
                    _tally(counts, *_episode(inputs, row, namespace, n))
                else:
                    _tally(counts, *_change(inputs, row, namespace, n))
    except ImportRejected:
        _flush(inputs, stores)  # the rows before the one refused are kept
        raise
    _tally(counts, *_flush(inputs, stores))
    rows_read, added, present = counts
    return ImportReport(rows_read, added, present, round(time.perf_counter() - began, 3))


def _tally(counts: list[int], added: int, present: int) -> None:
    counts[1] += added
    counts[2] += present


def _store_request(row: StoreRow, namespace: str, n: int) -> StoreRequest:
    try:
        return StoreRequest(
            text=row.text,
            namespace=check.namespace(namespace),
            metadata=row.metadata,
            occurred_at=row.occurred_at,
            event_id=check.event_id(IMPORTED + row.id),
            memory_id=check.memory_id(row.memory_id),
        )
    except ValidationError as exc:
        raise ImportRejected(f"line {n}: {exc}") from None


def _new(before: int, receipts: Sequence[Receipt]) -> tuple[int, int]:
    """(added, present): a receipt at or before `before` was already in the log."""
    added = sum(1 for r in receipts if r.position > before)
    return added, len(receipts) - added


def _flush(inputs: InputLog, stores: list[tuple[int, str, StoreRequest]]) -> tuple[int, int]:
    """Store the batch at once; if the log refuses it, one by one up to the row refused, so
    the rows before it are kept and the error names it. Rows whose own event this log holds
    (an export imported into the log it came from) are present already."""
    if not stores:
        return 0, 0
    batch, stores[:] = list(stores), []
    origin = inputs.events([row_id for _, row_id, _ in batch])
    fresh = [
        (n, r)
        for n, row_id, r in batch
        if row_id not in origin or origin[row_id].memory_id != r.memory_id
    ]
    present = len(batch) - len(fresh)
    before = inputs.last_position
    try:
        added, already = _new(before, inputs.store_many([r for _, r in fresh]))
        return added, present + already
    except (ValidationError, MemoryIdTaken):
        pass
    added = 0
    for n, request in fresh:
        before = inputs.last_position
        try:
            a, p = _new(before, inputs.store_many([request]))
        except (ValidationError, MemoryIdTaken) as exc:
            raise ImportRejected(f"line {n}: {exc}") from None
        added, present = added + a, present + p
    return added, present


def _change(
    inputs: InputLog, row: UpdateRow | ForgetRow | FeedbackRow, namespace: str, n: int
) -> tuple[int, int]:
    origin = inputs.events([row.id]).get(row.id)
    if origin is not None and origin.memory_id == row.memory_id:
        return 0, 1  # the log it came from
    before = inputs.last_position
    event_id = IMPORTED + row.id
    try:
        match row:
            case UpdateRow():
                receipt = inputs.update(
                    row.memory_id,
                    row.text,
                    row.metadata,
                    row.occurred_at,
                    event_id,
                    namespace=namespace,
                )
            case ForgetRow():
                receipt = inputs.forget(
                    row.memory_id,
                    row.reason,
                    event_id,
                    occurred_at=row.occurred_at,
                    namespace=namespace,
                )
            case FeedbackRow():
                receipt = inputs.feedback(
                    row.memory_id,
                    row.useful,
                    row.note,
                    event_id,
                    occurred_at=row.occurred_at,
                    namespace=namespace,
                )
    except (ValidationError, MemoryNotFound, MemoryGone) as exc:
        raise ImportRejected(f"line {n}: {exc}") from None
    return _new(before, [receipt])


def _episode(
    inputs: InputLog,
    row: EpisodeStartRow | EpisodeStepRow | EpisodeCompleteRow,
    namespace: str,
    n: int,
) -> tuple[int, int]:
    origin = inputs.events([row.id]).get(row.id)
    if origin is not None and origin.memory_id == row.memory_id:
        return 0, 1  # the log it came from
    before = inputs.last_position
    episodes = EpisodeLog(inputs, inputs.log)
    event_id = IMPORTED + row.id
    try:
        match row:
            case EpisodeStartRow():
                receipt = episodes.start(
                    row.task,
                    namespace,
                    domain=row.domain,
                    language=row.language,
                    tags=row.tags,
                    occurred_at=row.occurred_at,
                    event_id=event_id,
                    episode_id=row.memory_id,
                )
            case EpisodeStepRow():
                receipt = episodes.step(
                    row.memory_id,
                    row.tool,
                    row.action,
                    error=row.error,
                    latency_ms=row.latency_ms,
                    tokens=row.tokens,
                    observation=row.observation,
                    occurred_at=row.occurred_at,
                    event_id=event_id,
                    namespace=namespace,
                )
            case EpisodeCompleteRow():
                receipt = episodes.complete(
                    row.memory_id,
                    row.success,
                    score=row.score,
                    result=row.result,
                    error=row.error,
                    occurred_at=row.occurred_at,
                    event_id=event_id,
                    namespace=namespace,
                )
    except (ValidationError, MemoryNotFound, MemoryGone, MemoryIdTaken, EpisodeClosed) as exc:
        raise ImportRejected(f"line {n}: {exc}") from None
    return _new(before, [receipt])
