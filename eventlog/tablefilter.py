"""Row filters over envelope tables, shared by every stream implementation."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc


def filter_table(
    table: pa.Table,
    *,
    start: int = 1,
    stop: int | None = None,
    namespace: str | None = None,
    memory_id: str | None = None,
    kind: str | None = None,
) -> pa.Table:
    mask = pc.greater_equal(table.column("position"), start)
    if stop is not None:
        mask = pc.and_(mask, pc.less_equal(table.column("position"), stop))
    for column, value in (("namespace", namespace), ("memory_id", memory_id), ("kind", kind)):
        if value is not None:
            mask = pc.and_kleene(mask, pc.equal(table.column(column), value))
    return table.filter(pc.fill_null(mask, False))
