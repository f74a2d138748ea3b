"""Rows of the files `mnemo ingest` reads, as store requests: JSONL, CSV, Parquet, a LoCoMo
file, a ChatGPT data export. A malformed row stops the read with an error that names the
file and the row; event ids come from the file's name, the row and its text, so reading the
same file again stores nothing twice."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from mnemoflow.eventlog import StoreRequest
from mnemoflow.eventlog.errors import ValidationError

FORMATS = ("jsonl", "csv", "parquet", "locomo", "chatgpt")


class IngestError(ValidationError):
    """A file (or one of its rows) cannot be ingested; the message says which and why."""


def guess_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("jsonl", "ndjson"):
        return "jsonl"
    if suffix in ("csv", "parquet"):
        return suffix
    if path.name == "conversations.json":
        return "chatgpt"
    if suffix == "json":
        return "locomo"
    raise IngestError(f"{path}: cannot tell the format from the name; pass --format")


def source_event_id(*where: object) -> str:
    """An event id for a row of a source (a file's name, the row, the text): the same each
    time the source is read, so an ingest run again stores nothing twice. A digest, so any
    file name makes a valid id; the log keeps it keyed (`InputLog.keyed_event_id`)."""
    material = "\x00".join(map(str, where)).encode("utf-8", "surrogatepass")
    return "ingest:" + hashlib.sha256(material).hexdigest()[:32]


def _request(path: Path, row: int, doc: dict[str, Any], namespace: str) -> StoreRequest:
    text = doc.get("text")
    if not isinstance(text, str) or not text.strip():
        raise IngestError(f"{path}: row {row}: needs a non-empty 'text'")
    metadata = doc.get("metadata")
    if metadata is None:
        extra = {k: v for k, v in doc.items() if k not in ("text", "occurred_at", "namespace")}
        metadata = {k: v for k, v in extra.items() if v is not None and v != ""} or None
    if metadata is not None and not isinstance(metadata, dict):
        raise IngestError(f"{path}: row {row}: 'metadata' must be an object")
    occurred = doc.get("occurred_at") or None
    if occurred is not None and not isinstance(occurred, str | datetime):
        raise IngestError(f"{path}: row {row}: 'occurred_at' must be an ISO 8601 time")
    ns = str(doc.get("namespace") or namespace)
    if not ns:
        raise IngestError(f"{path}: row {row}: no namespace: give --ns or a 'namespace' field")
    return StoreRequest(text, ns, metadata, occurred, source_event_id(path.name, row, text))


@dataclass(frozen=True, slots=True)
class Row:
    path: Path
    number: int  # line or row of the file (for LoCoMo and ChatGPT, the memory's index)
    request: StoreRequest


def read(path: Path, fmt: str, namespace: str) -> Iterator[Row]:
    readers = {
        "jsonl": _jsonl,
        "csv": _csv,
        "parquet": _parquet,
        "locomo": _locomo,
        "chatgpt": _chatgpt,
    }
    if fmt not in readers:
        raise IngestError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    try:
        for number, request in enumerate(readers[fmt](path, namespace), 1):
            yield Row(path, number, request)
    except OSError as exc:
        raise IngestError(f"{path}: cannot read: {exc}") from exc


def _jsonl(path: Path, namespace: str) -> Iterator[StoreRequest]:
    with path.open("rb") as f:
        for row, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                doc = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise IngestError(f"{path}: row {row}: not a JSON object: {exc}") from exc
            if not isinstance(doc, dict):
                raise IngestError(f"{path}: row {row}: not a JSON object")
            yield _request(path, row, doc, namespace)


def _csv(path: Path, namespace: str) -> Iterator[StoreRequest]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "text" not in reader.fieldnames:
                raise IngestError(f"{path}: row 1: the header has no 'text' column")
            for row, doc in enumerate(reader, 2):
                if None in doc:
                    raise IngestError(f"{path}: row {row}: more fields than the header names")
                yield _request(path, row, dict(doc), namespace)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise IngestError(f"{path}: not a UTF-8 CSV file: {exc}") from exc


def _parquet(path: Path, namespace: str) -> Iterator[StoreRequest]:
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(f"{path}: not a Parquet file: {exc}") from exc
    if "text" not in table.column_names:
        raise IngestError(f"{path}: has no 'text' column")
    for row, doc in enumerate(table.to_pylist(), 1):
        if isinstance(doc.get("occurred_at"), datetime) and doc["occurred_at"].tzinfo is None:
            doc["occurred_at"] = doc["occurred_at"].replace(tzinfo=UTC)
        yield _request(path, row, doc, namespace)


def _locomo(path: Path, namespace: str) -> Iterator[StoreRequest]:
    from mnemoflow.pipeline.ingest.locomo import load_locomo  # the same reading as the evaluation

    for conv in load_locomo(path):
        for turn in conv.turns:
            ns = f"{namespace}-{conv.sample_id}" if namespace else conv.sample_id
            text = turn.text if isinstance(turn.text, str) else turn.text.decode()
            yield StoreRequest(text, ns, turn.metadata, turn.occurred_at, turn.event_id)


def _chatgpt(path: Path, namespace: str) -> Iterator[StoreRequest]:
    try:
        conversations = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise IngestError(f"{path}: not a ChatGPT export (conversations.json): {exc}") from exc
    if not isinstance(conversations, list):
        raise IngestError(f"{path}: not a ChatGPT export: expected a list of conversations")
    for index, conv in enumerate(conversations, 1):
        if not isinstance(conv, dict) or not isinstance(conv.get("mapping"), dict):
            raise IngestError(f"{path}: conversation {index}: has no 'mapping' of messages")
        messages = []
        for node in conv["mapping"].values():
            message = (node or {}).get("message") or {}
            parts = (message.get("content") or {}).get("parts") or []
            text = "\n".join(p for p in parts if isinstance(p, str)).strip()
            role = (message.get("author") or {}).get("role")
            if text and role in ("user", "assistant"):
                messages.append(
                    (message.get("create_time") or 0, message.get("id", ""), role, text)
                )
        for time, message_id, role, text in sorted(messages):
            yield StoreRequest(
                f"{role}: {text}",
                namespace,
                {"conversation": str(conv.get("id", index)), "title": str(conv.get("title", ""))},
                datetime.fromtimestamp(time, UTC) if time else None,
                source_event_id("chatgpt", conv.get("id", index), message_id),
            )
