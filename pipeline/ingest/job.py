"""`mnemo ingest`: many memories at once, end to end.

1. Rows become store requests (`ingest_sources`) and go to the log in large batched appends;
   their event ids come from the source, so a re-run stores nothing twice and an
   interrupted run picks up where it stopped.
2. The embedder's work for every new memory is planned exactly as the embedder actor would
   (`EmbedderActor.plan`), embedded on a Ray Data actor pool, and appended in order as the
   embedder's own events (`finish`): the embedded stream is the same as if the actor had run.
3. The other actors (extractor, linker, consolidator, decay) and the projections catch up.

A progress bar (standard error) shows memories, rate and time left.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import structlog
from tqdm import tqdm

from mnemoflow.actors.embedder import Embedder, EmbedderActor, EmbedderSettings
from mnemoflow.actors.follower import Derived, Opened
from mnemoflow.actors.inline import seal_derived
from mnemoflow.eventlog import Receipt, StoreRequest
from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.eventlog.schema import EMBEDDED_STREAM
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.ingest.sources import IngestError, Row, guess_format, read

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class IngestReport:
    rows: int
    stored: int  # new memories (a re-run stores none)
    seconds: float
    memories_per_s: float
    # With `compare`: the model alone on (a spread sample of) the same texts, in this
    # process, and the end-to-end rate's share of it. The comparison's own time is not
    # counted in `seconds`.
    raw_embedder_memories_per_s: float | None = None
    ratio: float | None = None


class EmbedBatch:
    """A Ray Data actor: one model session, embedding batches of texts."""

    def __init__(self, settings_json: str) -> None:
        self.embedder = Embedder(EmbedderSettings.model_validate_json(settings_json))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.embedder.embed([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vector": vectors}


def chunks(items: Iterable[Row], count: int, size: int | None = None) -> Iterator[list[Row]]:
    """Rows in chunks of `count` (and, given `size`, of about that many bytes of text and
    metadata: a larger row goes alone); if reading fails, the rows read so far come out
    first, then the error (so they are stored, and a re-run after a fix completes the rest)."""
    chunk: list[Row] = []
    used = 0
    rows = iter(items)
    while True:
        try:
            item = next(rows)
        except StopIteration:
            break
        except IngestError:
            if chunk:
                yield chunk
            raise
        weight = _weight(item) if size is not None else 0
        if chunk and size is not None and used + weight > size:
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += weight
        if len(chunk) == count:
            yield chunk
            chunk, used = [], 0
    if chunk:
        yield chunk


def _weight(row: Row) -> int:
    text = row.request.text
    return len(text if isinstance(text, bytes) else text.encode()) + len(
        json.dumps(row.request.metadata or {})
    )


def ingest(
    mem: Memory,
    paths: Sequence[Path],
    namespace: str,
    fmt: str | None = None,
    *,
    batch_size: int = 2000,
    actors: int | None = None,
    ray_address: str | None = None,
    progress: bool = True,
    compare: int | None = 0,
) -> IngestReport:
    """Store every row of `paths`, embed the new memories, and wait until every actor and
    projection has caught up.

    `actors`: embedders in the Ray Data pool; 0 embeds in this process. By default, a pool
    as large as the cluster's CPUs allow when there is a cluster to join (`ray_address` or
    RAY_ADDRESS), else this process: on one small machine Ray's start-up and a second
    process only cost time (LoCoMo dev on 2 cores: 0.79 of the model's rate with a pool of
    one, 0.93 in-process).

    `compare`: also measure the model's own rate on these memories — on all their texts if
    None (exact), or on a sample of that many spread over them (quicker, but a sparse sample
    pads its batches more: on LoCoMo dev 512 texts understated the rate by ~15%); 0 (the
    default) skips it.
    """
    # Each event is opened by several actors and projections: once is enough.
    with mem.log.remembering():
        began = time.perf_counter()
        rows = stored = 0
        first_new = mem.log.input.last_position + 1
        bar = tqdm(desc="stored", unit=" mem", disable=not progress, mininterval=0.5)
        for path in paths:
            for chunk in chunks(read(path, fmt or guess_format(path), namespace), batch_size):
                before = mem.log.input.last_position
                receipts = store_rows(mem, chunk)
                rows += len(chunk)
                stored += sum(1 for r in receipts if r.position > before)
                bar.update(len(chunk))
        bar.close()
        embedder = mem.runtime.follower("embedder")
        assert isinstance(embedder, EmbedderActor)
        raw = _embed_new(
            mem,
            embedder,
            first_new,
            pool=_Pool(actors, ray_address or os.environ.get("RAY_ADDRESS")),
            progress=progress,
            compare=compare,
        )
        mem.sync()  # the other actors, then every projection
    seconds = time.perf_counter() - began - (raw.seconds if raw else 0.0)
    rate = stored / seconds if seconds else 0.0
    return IngestReport(
        rows=rows,
        stored=stored,
        seconds=round(seconds, 2),
        memories_per_s=round(rate, 1),
        raw_embedder_memories_per_s=round(raw.rate, 1) if raw else None,
        ratio=round(rate / raw.rate, 3) if raw and raw.rate else None,
    )


@contextmanager
def _beside(work: Callable[[], object], name: str) -> Iterator[None]:
    """Run `work` on a thread of its own while the block runs; at the block's end wait for
    it, and raise its error if it failed (unless the block is raising one already)."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failed:
        raise failed[0]


@dataclass(frozen=True, slots=True)
class _Raw:
    rate: float  # memories/s, both vectors
    seconds: float  # what measuring it took


class _Stores(Protocol):
    def store_many(self, requests: Sequence[StoreRequest]) -> list[Receipt]: ...


def store_rows(mem: _Stores, chunk: list[Row]) -> list[Receipt]:
    """One durable append for the chunk; if a row is refused, the rows before it are stored
    and the error names the file and the row (a re-run then completes the rest)."""
    try:
        return mem.store_many([row.request for row in chunk])
    except ValidationError:
        receipts = []
        for row in chunk:
            try:
                receipts += mem.store_many([row.request])
            except ValidationError as exc:
                raise IngestError(f"{row.path}: row {row.number}: {exc}") from exc
        return receipts


def _embed_new(
    mem: Memory,
    embedder: EmbedderActor,
    start: int,
    *,
    pool: _Pool,
    progress: bool,
    compare: int | None,
) -> _Raw | None:
    """Embed every memory text from `start` on (on a Ray Data actor pool, or here with
    `actors=0`) and append the embedder's events in input order. With `compare`, returns
    the model's own rate on these memories, measured in this process before the embedding
    starts."""
    done = mem.runtime.progress("embedder")
    start = max(start, done + 1)
    end = mem.log.input.last_position
    if start > end:
        return None
    opened = mem.log.opened(mem.log.input.read(start, end))
    texts, jobs = embedder.plan(opened)
    mem.runtime.advance("embedder", end)  # its work is done here, not by the inline actor
    if not jobs:
        return None
    raw = _raw_rate(embedder, texts, len(jobs), compare) if compare != 0 else None
    # While the model works, the actors that need no vectors (extractor, decay) and the
    # input's projection run here; the linker waits for the vectors (NotReady) and runs
    # after. (Appending the vectors window by window, for the linker to follow, was measured
    # no faster: on two cores the model and the actors share the same CPUs. Nor, afterwards,
    # folding the vectors' projection on a thread beside the linker: the two share the GIL,
    # and the work left after the model took 1.06 s alone and 1.19 s side by side.)
    with _beside(mem.sync, "mnemo-ingest-actors"):
        if pool.on_ray:
            vectors = _embed_on_ray(texts, embedder.settings, pool, progress=progress)
        else:  # in this process (one machine, no Ray start-up: faster on two cores)
            vectors = embedder.embedder.embed(texts)
    derived = EmbedderActor.finish(jobs, vectors, embedder.embedder.model_id, embedder.settings)
    _append(mem, embedder, opened, derived)
    return raw


def _raw_rate(embedder: EmbedderActor, texts: list[str], memories: int, sample: int | None) -> _Raw:
    """The model alone, in this process: all texts, or `sample` of them spread evenly (so
    their lengths are those of the whole set)."""
    model = embedder.embedder  # loaded here if need be: counted in the end-to-end time
    step = 1 if sample is None else max(1, len(texts) // sample)
    picked = texts[::step]
    began = time.perf_counter()
    model.embed(picked)
    seconds = time.perf_counter() - began
    return _Raw(memories / (seconds / len(picked) * len(texts)), seconds)


@dataclass(frozen=True, slots=True)
class _Pool:
    actors: int | None  # None: as many as the cluster's CPUs allow
    address: str | None  # the cluster to join

    @property
    def on_ray(self) -> bool:
        return bool(self.actors) if self.actors is not None else self.address is not None

    def size(self, threads: int) -> int:
        if self.actors is not None:
            return self.actors
        import ray

        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        return max(1, int(resources.get("CPU", 1)) // threads)


def _embed_on_ray(
    texts: list[str], settings: EmbedderSettings, pool: _Pool, *, progress: bool
) -> np.ndarray:
    import ray.data

    from mnemoflow.pipeline.service.ray_runner import init_ray

    init_ray(pool.address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    context.execution_options.preserve_order = True
    # Shortest first, as the embedder orders one call's texts: each batch the pool gets then
    # holds texts of about one length and pads little (in input order it ran ~40% slower).
    by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    embedded = ray.data.from_items([{"i": i, "text": texts[i]} for i in by_length]).map_batches(
        EmbedBatch,
        fn_constructor_kwargs={"settings_json": settings.model_dump_json()},
        batch_size=settings.batch_size * 4,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=pool.size(settings.threads)),
    )
    out = np.empty((len(texts), 0), np.float32)
    for batch in embedded.iter_batches(batch_size=4096, batch_format="numpy"):
        index: Any = batch["i"]
        column: Any = batch["vector"]
        vectors = np.stack(list(column)) if column.dtype == object else column
        if out.shape[1] == 0:
            out = np.empty((len(texts), vectors.shape[1]), np.float32)
        out[index] = vectors
    return out


def _append(
    mem: Memory, embedder: EmbedderActor, opened: list[Opened], derived: list[Derived]
) -> None:
    """The embedder's events, sealed and appended in input order, a batch at a time."""
    by_source: dict[int, list[Derived]] = {}
    for d in derived:
        by_source.setdefault(d.source_position, []).append(d)
    stream = mem.log.stream(EMBEDDED_STREAM)
    size = 2000
    for at in range(0, len(opened), size):
        records = [o.record for o in opened[at : at + size]]
        made = [d for r in records for d in by_source.get(r.position, [])]
        with mem.log.keyring.sealing():
            stream.append(seal_derived(mem.log, embedder, records, made))


__all__ = ["IngestReport", "ingest"]
