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
    """Rows with start <= position <= stop matching every filter given.

    The table must hold a gapless run of positions (every segment does), so the position range
    is a slice; only the other filters need a scan.
    """
    if table.num_rows == 0:
        return table
    first = table.column("position")[0].as_py()
    lo = min(max(start - first, 0), table.num_rows)
    hi = table.num_rows if stop is None else max(lo, min(table.num_rows, stop - first + 1))
    table = table.slice(lo, hi - lo)
    mask = None
    for column, value in (("namespace", namespace), ("memory_id", memory_id), ("kind", kind)):
        if value is not None:
            match = pc.fill_null(pc.equal(table.column(column), value), False)
            mask = match if mask is None else pc.and_(mask, match)
    return table if mask is None else table.filter(mask)
