"""The Arrow shapes of the DuckDB tables' rows, in column order (see schema.sql): rows go
into DuckDB as Arrow tables, far faster than row-by-row inserts."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
# Arrow shapes of the tables' rows, in column order (see schema.sql).
MEMORY_ARROW = pa.schema(
    [
        ("memory_id", pa.string()),
        ("doc", pa.int64()),
        ("namespace", pa.string()),
        ("text", pa.string()),
        ("metadata", pa.string()),
        ("status", pa.string()),
        ("occurred_at", TS),
        ("recorded_at", TS),
        ("created_position", pa.int64()),
        ("text_position", pa.int64()),
        ("version", pa.int32()),
        ("length", pa.int32()),
        ("context", pa.string()),
        ("prev_doc", pa.int64()),
        ("utc_offset", pa.int16()),
    ]
)
VERSION_ARROW = pa.schema(
    [
        ("memory_id", pa.string()),
        ("namespace", pa.string()),
        ("version", pa.int32()),
        ("text", pa.string()),
        ("metadata", pa.string()),
        ("position", pa.int64()),
        ("recorded_at", TS),
        ("occurred_at", TS),
    ]
)
FEEDBACK_ARROW = pa.schema(
    [
        ("memory_id", pa.string()),
        ("namespace", pa.string()),
        ("position", pa.int64()),
        ("useful", pa.bool_()),
        ("note", pa.string()),
        ("recorded_at", TS),
    ]
)
