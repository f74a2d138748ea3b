"""gc_paused: the cycle collector stays off while any caller folds, and comes back after."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from mnemoflow.projections.heap import gc_paused


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_back_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner exit does not turn it back on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_on_after_an_error() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("the fold failed")
    assert gc.isenabled()


def test_stays_off_if_it_was_off() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_threads_overlapping() -> None:
    """The first thread out must not turn the collector on under the second one."""
    inside, first_out, second_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[bool] = []

    def second() -> None:
        with gc_paused():
            inside.set()
            first_out.wait(5)
            seen.append(gc.isenabled())
        second_out.set()

    thread = threading.Thread(target=second)
    with gc_paused():
        thread.start()
        assert inside.wait(5)
    first_out.set()
    thread.join(5)
    assert second_out.is_set() and seen == [False]
    assert gc.isenabled()


def test_cycles_made_while_paused_are_collected_after() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with gc_paused():
        node = Node()
        ref = weakref.ref(node)
        del node
        assert ref() is not None  # a cycle: reference counting alone keeps it
    gc.collect()
    assert ref() is None
