"""The inline runner's step: run one follower over its upstream stream, in this process.

Exactly-once by tracking: the follower resumes after the highest upstream position recorded
(as causation) in its output stream, and derived event ids are fixed by their source, so a
batch replayed after a crash appends nothing twice.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple, cast

import structlog

from mnemoflow.actors.follower import Derived, Follower, NotReady, Stateful, derived_event_id
from mnemoflow.eventlog import Causation, Draft, EventLog, Record
from mnemoflow.eventlog.derived import ActorProgress
from mnemoflow.eventlog.errors import KeyErased
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.schema import (
    ACTOR_PROGRESS,
    EMBEDDED_STREAM,
    MEMORY_STORED,
    SYSTEM_NAMESPACE,
)
from mnemoflow.projections.heap import gc_paused, release_freed_memory

log = structlog.get_logger(__name__)


class LogHistory:
    """An actor's look into other streams (the `Lookups` protocol): back into the input
    stream, bounded so a lookup stays cheap, and across to the embedded stream."""

    def __init__(self, event_log: EventLog, *, reach: int = 50_000) -> None:
        self._log = event_log
        self._reach = reach

    def embedded(self, input_positions: Sequence[int]) -> dict[int, Opened | None]:
        stream = self._log.stream(EMBEDDED_STREAM)

        def find(positions: Sequence[int]) -> dict[int, Record | None]:
            ids = {p: derived_event_id(EMBEDDED_STREAM, p, 0) for p in positions}
            records = stream.get_many(list(ids.values()))
            return {p: records.get(event_id) for p, event_id in ids.items()}

        found = find(input_positions)
        missing = [p for p, r in found.items() if r is None]
        if missing:
            stream.refresh()  # its writer may be another process
            tail = stream.tail()
            reached = tail.causation.position if tail and tail.causation else 0
            if max(missing) > reached:
                raise NotReady(f"the embedder has not reached input position {max(missing)}")
            found.update(find(missing))
        records = [r for r in found.values() if r is not None]
        opened = {
            o.record.causation.position: o for o in self._log.opened(records) if o.record.causation
        }
        return {p: opened.get(p) for p in input_positions}

    def latest(self, stream: str, memory_id: str) -> Opened | None:
        events = self._log.stream(stream)
        events.refresh()  # its writer may be another process
        *_, record = [None, *events.read(memory_id=memory_id)]
        return None if record is None else Opened(record, self._log.open_payload(record))

    def readable(self, key_id: str | None) -> bool:
        return key_id is None or not self._log.keyring.is_destroyed(key_id)

    def previous_stored(self, namespace: str, before: int) -> Opened | None:
        start = max(1, before - self._reach)
        record = self._log.input.last(start, before - 1, namespace=namespace, kind=MEMORY_STORED)
        return None if record is None else Opened(record, self._log.open_payload(record))


def resume_position(event_log: EventLog, follower: Follower) -> int:
    """The last upstream position the follower's output records having processed."""
    tail = event_log.stream(follower.output).tail()
    return tail.causation.position if tail is not None and tail.causation is not None else 0


class Step(NamedTuple):
    read: int  # upstream events processed
    derived: int  # events appended
    position: int  # the upstream position processed through


def run_follower(
    event_log: EventLog,
    follower: Follower,
    *,
    batch_size: int = 256,
    stop: int | None = None,
    start_after: int | None = None,
    max_batches: int | None = None,
) -> Step:
    """Process what is upstream past the resume point (at most `max_batches` batches, for
    backpressure).

    The resume point is `start_after` when the caller kept it from its last step, else the
    last upstream position the output records. An actor that derives nothing from the last
    events it saw re-reads them after a restart; that is harmless, because it derives the
    same events again (none) or the same ids, which the log takes once."""
    upstream = event_log.stream(follower.upstream)
    output = event_log.stream(follower.output)
    upstream.refresh()
    done = resume_position(event_log, follower) if start_after is None else start_after
    read = derived = batches = 0
    while True:
        last = upstream.last_position if stop is None else min(stop, upstream.last_position)
        if done >= last or (max_batches is not None and batches >= max_batches):
            return Step(read, derived, done)
        if isinstance(follower, Stateful) and not follower.restored:
            _restore(event_log, follower, done, batch_size)  # only once there is work
        batches += 1
        began = time.perf_counter()
        with gc_paused():
            records = list(upstream.read(done + 1, min(last, done + batch_size)))
            try:
                made_here = follower.process(event_log.opened(records))
            except NotReady as wait:
                log.debug("actor.waiting", actor=follower.name, why=str(wait))
                return Step(read, derived, done)
            # Sealed and appended under the keyring's shared lock: an erasure returns only
            # once these are in, and every seal after it sees the key gone (KeyErased).
            with event_log.keyring.sealing():
                drafts = seal_derived(event_log, follower, records, made_here)
                made = len(drafts)
                marker = _progress_marker(event_log, follower, drafts, records[-1].position)
                if marker is not None:
                    drafts.append(marker)
                output.append(drafts)
        done = records[-1].position
        read += len(records)
        derived += made
        log.info(
            "actor.batch",
            actor=follower.name,
            upstream=len(records),
            derived=len(drafts),
            position=done,
            ms=round((time.perf_counter() - began) * 1e3, 1),
        )


def _progress_marker(
    event_log: EventLog, follower: Follower, drafts: list[Draft], last: int
) -> Draft | None:
    """When a batch ends on events the actor derived nothing from, an `actor.progress` event
    records how far it read: the output's last causation is then always its resume point
    (a sparse actor such as the consolidator would otherwise re-read its tail, and look
    behind in `stats`, after every restart)."""
    if drafts and drafts[-1].causation is not None and drafts[-1].causation.position == last:
        return None
    event_id = f"{follower.output}:{last}:progress"
    key_id, sealed = event_log.seal(
        ACTOR_PROGRESS, SYSTEM_NAMESPACE, event_id, ActorProgress(read_through=last)
    )
    return Draft(
        event_id=event_id,
        kind=ACTOR_PROGRESS,
        namespace=SYSTEM_NAMESPACE,
        payload=sealed,
        actor=follower.name,
        causation=Causation(follower.upstream, last),
        key_id=key_id,
    )


def _restore(event_log: EventLog, follower: Stateful, done: int, batch_size: int) -> None:
    """Fold the upstream prefix the follower has already processed back into its state."""
    began = time.perf_counter()
    upstream = event_log.stream(cast(Follower, follower).upstream)
    kinds = getattr(follower, "observes", None)  # the kinds its state folds (None: all)
    start = 1
    with gc_paused():
        while start <= done:
            end = min(done, start + 4 * batch_size - 1)
            records = upstream.read(start, end)
            if kinds is not None:  # opened only if it folds them: a payload costs a decryption
                records = (r for r in records if r.kind in kinds)
            follower.observe(event_log.opened(list(records)))
            start = end + 1
    follower.restored = True
    # The segments a restore read last are not what the actor reads next (the stream's end):
    # ~35 MB of decompressed tables for the linker at 10^5.
    event_log.drop_cached_tables()
    release_freed_memory()
    if done:
        log.info(
            "actor.restored",
            actor=cast(Follower, follower).name,
            position=done,
            ms=round((time.perf_counter() - began) * 1e3, 1),
        )


def seal_derived(
    event_log: EventLog, follower: Follower, records: list[Record], derived: list[Derived]
) -> list[Draft]:
    """Derived events (made by the follower from these records, here or elsewhere) as the
    drafts it appends: ids fixed by their source, each sealed with its source's key. The
    caller holds `keyring.sealing()` until they are appended."""
    sources = {r.position: r for r in records}
    drafts: list[Draft] = []
    seen: dict[int, int] = defaultdict(int)
    for d in derived:
        index = seen[d.source_position]
        seen[d.source_position] += 1
        event_id = derived_event_id(follower.output, d.source_position, index)
        try:
            key_id, sealed = event_log.seal(
                d.kind,
                d.namespace,
                event_id,
                d.payload,
                key_id=sources[d.source_position].key_id,
            )
        except KeyErased:
            continue  # erased while we worked: what was derived from it must not be kept
        drafts.append(
            Draft(
                event_id=event_id,
                kind=d.kind,
                namespace=d.namespace,
                payload=sealed,
                actor=follower.name,
                memory_id=d.memory_id,
                occurred_at=d.occurred_at,
                causation=Causation(follower.upstream, d.source_position),
                key_id=key_id,
            )
        )
    return drafts
