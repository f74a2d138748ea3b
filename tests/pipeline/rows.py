"""The projection's own row of a memory, for tests of what the projections keep beside what
`Memory.get` shows (the text in context, the previous turn, the indexed terms)."""

from __future__ import annotations

from mnemoflow import Memory
from mnemoflow.projections.memstate import MemoryRow


def projected(mem: Memory, memory_id: str) -> MemoryRow:
    mem.runtime.refresh()
    row = mem.runtime.projector.duck.get(memory_id)
    assert row is not None, memory_id
    return row
