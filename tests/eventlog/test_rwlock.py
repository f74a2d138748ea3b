"""The readers-writer lock: readers share, a writer is alone."""

from __future__ import annotations

import threading
import time

from mnemoflow.eventlog.locks import ReadWriteLock


def test_readers_share_and_a_writer_waits_for_them() -> None:
    lock = ReadWriteLock()
    inside: list[str] = []
    both_reading = threading.Barrier(2, timeout=5)

    def reader(name: str) -> None:
        with lock.reading():
            inside.append(name)
            both_reading.wait()  # two readers are in at once, or this times out
            time.sleep(0.05)
            inside.append(f"{name} out")

    def writer() -> None:
        time.sleep(0.01)
        with lock.writing():
            inside.append("writer")

    threads = [threading.Thread(target=reader, args=(n,)) for n in ("a", "b")]
    threads.append(threading.Thread(target=writer))
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert inside[-1] == "writer"  # after both readers left
    assert {"a out", "b out"} <= set(inside[:-1])


def test_a_reader_waits_for_the_writer() -> None:
    lock = ReadWriteLock()
    order: list[str] = []
    entered = threading.Event()

    def writer() -> None:
        with lock.writing():
            entered.set()
            time.sleep(0.05)
            order.append("writer done")

    t = threading.Thread(target=writer)
    t.start()
    entered.wait(5)
    with lock.reading():
        order.append("reader")
    t.join(5)
    assert order == ["writer done", "reader"]


def test_a_waiting_writer_goes_before_new_readers() -> None:
    """Readers that keep overlapping never leave the lock free; the writer still gets in."""
    lock = ReadWriteLock()
    stop = threading.Event()
    wrote = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            with lock.reading():
                time.sleep(0.005)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for t in readers:
        t.start()
    time.sleep(0.02)

    def writer() -> None:
        with lock.writing():
            wrote.set()

    w = threading.Thread(target=writer)
    w.start()
    got_in = wrote.wait(5)
    stop.set()
    for t in [*readers, w]:
        t.join(5)
    assert got_in
