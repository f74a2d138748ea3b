"""keeping_doc_ids: a long fold's doc ids are kept, and are the ids computed without it."""

from __future__ import annotations

import pytest

import mnemoflow.projections.memstate as memstate
from mnemoflow.eventlog.keys import key64
from mnemoflow.projections.memstate import doc_id, keeping_doc_ids

IDS = [f"{i:032x}" for i in range(50)]


def test_kept_ids_are_the_computed_ones_and_go_after_the_block() -> None:
    plain = [doc_id(m) for m in IDS]
    assert plain == [key64(m) & 0x7FFF_FFFF_FFFF_FFFF for m in IDS]
    assert all(d >= 0 for d in plain)
    with keeping_doc_ids():
        with keeping_doc_ids():  # nested: the inner exit keeps them
            assert [doc_id(m) for m in IDS] == plain
        assert memstate._docs.items is not None and set(memstate._docs.items) == set(IDS)
        assert [doc_id(m) for m in IDS] == plain
    assert memstate._docs.items is None


def test_kept_ids_start_again_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memstate, "_DOCS_KEPT_MAX", 8)
    with keeping_doc_ids():
        got = [doc_id(m) for m in IDS]
        assert memstate._docs.items is not None and len(memstate._docs.items) <= 8
    assert got == [key64(m) & 0x7FFF_FFFF_FFFF_FFFF for m in IDS]


def test_dropped_after_an_error() -> None:
    with pytest.raises(RuntimeError), keeping_doc_ids():
        doc_id(IDS[0])
        raise RuntimeError("the fold failed")
    assert memstate._docs.items is None
