"""The change log readers of the projection use to re-read only what changed."""

from __future__ import annotations

from mnemoflow.projections.changes import Changes


def test_since_gives_a_namespaces_changed_docs_or_none_when_not_known() -> None:
    changes = Changes(keep=3)
    assert changes.seq == 0 and changes.since(0, "n") == frozenset()
    changes.record({"n": [1, 2], "m": [9]})
    changes.record({"n": [3]})
    assert changes.seq == 2
    assert changes.since(0, "n") == {1, 2, 3} and changes.since(1, "n") == {3}
    assert changes.since(0, "m") == {9} and changes.since(2, "n") == frozenset()
    changes.record({"n": [4]})  # four entries: the oldest goes
    assert changes.since(0, "n") is None  # batch 1 is no longer fully known
    assert changes.since(1, "n") == {3, 4}
    changes.reset()  # an erasure: every reader reads everything again
    assert changes.since(3, "n") is None and changes.since(changes.seq, "n") == frozenset()


def test_a_copy_is_laid_over_while_few_of_its_docs_changed() -> None:
    """At most a tenth of the copy (and never fewer than 64, nor more than 2,000) changed
    docs are laid over; past that, or when not known, the copy is read whole (None)."""
    changes = Changes()
    changes.record({"n": range(100)})
    assert changes.to_lay_over(0, "n", 10) is None  # 100 > the floor of 64
    assert changes.to_lay_over(0, "n", 640) is None  # 100 > 64, a tenth of 640
    assert changes.to_lay_over(0, "n", 1_000) == frozenset(range(100))  # a tenth
    changes.record({"n": range(100, 2_100)})
    assert changes.to_lay_over(0, "n", 10**6) is None  # 2,100 > 2,000
    changes.reset()
    assert changes.to_lay_over(1, "n", 10**6) is None
