"""The FAISS projection: one vector index per namespace, folded from two streams.

From the input stream it learns which text each memory holds now (and which memories were
forgotten or erased); from the embedded stream it takes the vector of that text. A vector is
kept only while it belongs to the memory's current text, so after everything is caught up
the indexes hold exactly one vector per active, embedded memory, whatever order the two
streams were applied in, and an incremental build equals a rebuild.

Snapshots are a directory: `manifest.json` (positions covered, namespaces, model id) and one
`.npz` of ids and vectors per namespace, plus `state.npz`. On open the newest snapshot is
loaded and the log is replayed from the positions it covers.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import structlog

from mnemoflow.eventlog.atomic import fsync_path, sweep_leftovers
from mnemoflow.eventlog.locks import ReadWriteLock
from mnemoflow.eventlog.opened import Opened
from mnemoflow.eventlog.payloads import MemoryEmbedded, VectorDtype, unpack_rows
from mnemoflow.eventlog.schema import (
    EMBEDDED_STREAM,
    INPUT_STREAM,
    MEMORY_FORGOTTEN,
    MEMORY_STORED,
    MEMORY_UPDATED,
    SUBJECT_ERASED,
    TASK_EMBEDDED,
)
from mnemoflow.projections.errors import ProjectionError
from mnemoflow.projections.memstate import doc_id
from mnemoflow.projections.vector_settings import VectorSettings
from mnemoflow.projections.vectors import FaissIndex, Ids, VectorIndex, Vectors, checksum

log = structlog.get_logger(__name__)

DEAD = -1
TEXT, CONTEXT = "text", "context"
FIELDS = (TEXT, CONTEXT)  # a memory's
TASK = "task"  # an episode's task: an index of its own, never searched by recall


IndexFactory = Callable[[int], VectorIndex]


class VectorProjection:
    def __init__(
        self,
        directory: Path | None,
        settings: VectorSettings | None = None,
        *,
        index_factory: IndexFactory | None = None,
    ) -> None:
        self.directory = directory
        self.settings = settings or VectorSettings()
        s = self.settings
        self._factory: IndexFactory = index_factory or (
            lambda dim: FaissIndex(
                dim,
                approximate_above=s.approximate_above,
                approximate=s.approximate,
                nprobe=s.nprobe,
                hnsw_m=s.hnsw_m,
                ef_search=s.ef_search,
                storage=s.storage,
            )
        )
        self._guard = ReadWriteLock()  # searches run while the service's pump applies
        # A long fold (a rebuild) writes one snapshot at its end instead of one per
        # `snapshot_every` events, each rewriting every vector so far (~2.5 s of a 10^5 rebuild).
        self.defer_snapshots = False
        self._empty()
        if directory is not None:
            _finish_swap(directory)
        if directory is not None and (directory / "manifest.json").exists():
            try:
                self._load(directory)
            except ProjectionError as exc:
                # A fold of the log: start empty, and the projector replays into it.
                log.error("projections.faiss_snapshot_damaged", error=str(exc), action="rebuild")
                self._empty()
                self.drop(directory)

    def _empty(self) -> None:
        self._indexes: dict[tuple[str, str], VectorIndex] = {}  # (namespace, field)
        self._text_at: dict[int, int] = {}  # doc -> input position of its text, or DEAD
        self._namespace_of: dict[int, str] = {}
        # Whose text each context vector holds: forgetting a memory drops the context vectors
        # of the memories stored after it (its words must not stay findable through them).
        # (Who used a forgotten memory's text is found by one pass over this map per input
        # batch that forgets: a map the other way held a set per memory, 26 MB at 10^5.)
        self._context_from: dict[int, int] = {}  # doc -> the doc its context came from
        self._positions = {INPUT_STREAM: 0, EMBEDDED_STREAM: 0}
        self._since_snapshot = 0
        self.model_id: str | None = None
        self._dropping: dict[tuple[str, str], set[int]] = {}  # removed at the batch's end

    def applied(self, stream: str) -> int:
        return self._positions.get(stream, 0)

    # -- folding -------------------------------------------------------------------------

    def apply_input(self, events: Sequence[Opened]) -> None:
        with self._guard.writing():
            self._apply_input(events)

    def _apply_input(self, events: Sequence[Opened]) -> None:
        self._dropping.clear()
        forgotten: dict[int, str] = {}  # doc -> its namespace
        for event in events:
            r = event.record
            if r.kind == SUBJECT_ERASED:
                self._erase(r.namespace)
            elif r.memory_id is None:
                continue
            elif r.kind in (MEMORY_STORED, MEMORY_UPDATED):
                doc = doc_id(r.memory_id)
                if self._text_at.get(doc) == DEAD:
                    continue
                if r.kind == MEMORY_UPDATED and doc not in self._text_at:
                    continue
                self._text_at[doc] = r.position
                self._namespace_of[doc] = r.namespace
                self._drop(r.namespace, doc)  # the vector of the old text no longer applies
            elif r.kind == MEMORY_FORGOTTEN:
                doc = doc_id(r.memory_id)
                if doc in self._text_at:
                    self._text_at[doc] = DEAD
                    self._drop(r.namespace, doc)
                    forgotten[doc] = r.namespace
        if forgotten:
            users = [(u, s) for u, s in self._context_from.items() if s in forgotten]
            for user, source in users:
                self._drop(forgotten[source], user, (CONTEXT,))
        # A flat index scans every vector to remove any: once per index for the batch.
        for key, docs in self._dropping.items():
            index = self._indexes.get(key)
            if index is not None:
                index.remove(np.fromiter(docs, np.int64, len(docs)))
        self._dropping.clear()
        self._advance(INPUT_STREAM, events)

    def apply_embedded(self, events: Sequence[Opened]) -> None:
        with self._guard.writing():
            self._apply_embedded(events)

    @property
    def _storage_dtype(self) -> type[np.floating[Any]]:
        return np.float16 if self.settings.storage == "fp16" else np.float32

    def _apply_embedded(self, events: Sequence[Opened]) -> None:
        # Per index: its docs, and their vectors still packed (unpacked a batch at a time).
        batches: dict[tuple[str, str], tuple[list[int], list[bytes], list[VectorDtype]]] = {}
        for event in events:
            r, payload = event.record, event.payload
            if not isinstance(payload, MemoryEmbedded) or r.memory_id is None:
                continue  # erased: nothing to index
            if self.model_id is not None and payload.model_id != self.model_id:
                continue  # another model's vectors cannot be compared with this one's
            self.model_id = payload.model_id
            doc = doc_id(r.memory_id)
            if r.kind == TASK_EMBEDDED:  # a task never changes: only an erasure takes it
                ids, raws, dtypes = batches.setdefault((r.namespace, TASK), ([], [], []))
                ids.append(doc)
                raws.append(payload.vector)
                dtypes.append(payload.vector_dtype)
                continue
            source = r.causation.position if r.causation else -2
            if self._text_at.get(doc) != source:
                continue  # not (or no longer) the text the memory holds
            packed = [(TEXT, payload.vector, payload.vector_dtype)]
            if payload.context_vector:
                packed.append((CONTEXT, payload.context_vector, payload.context_dtype))
                if payload.context_memory_id is not None:
                    source_doc = doc_id(payload.context_memory_id)
                    if self._text_at.get(source_doc) == DEAD:
                        del packed[1]  # the memory it came from is forgotten (or erased)
                    else:
                        self._context_from[doc] = source_doc
            for field, raw, dtype in packed:
                ids, raws, dtypes = batches.setdefault((r.namespace, field), ([], [], []))
                ids.append(doc)
                raws.append(raw)
                dtypes.append(dtype)
        for key, (ids, raws, dtypes) in batches.items():
            # At the storage's precision whatever the index (FAISS keeps fp16 codes), so a
            # snapshot restores exactly the vectors that were held.
            matrix = unpack_rows(raws, dtypes).astype(self._storage_dtype).astype(np.float32)
            index = self._indexes.get(key)
            if index is None:
                index = self._indexes[key] = self._factory(matrix.shape[1])
            index.upsert(np.array(ids, np.int64), matrix)
        self._advance(EMBEDDED_STREAM, events)

    def _drop(self, namespace: str, doc: int, fields: Sequence[str] = FIELDS) -> None:
        """Remove the doc's vectors, at the end of the input batch being applied (no vector
        is added before then, and an erasure in between drops its namespace's indexes)."""
        for field in fields:
            self._dropping.setdefault((namespace, field), set()).add(doc)
        if CONTEXT in fields:
            self._context_from.pop(doc, None)

    def _erase(self, namespace: str) -> None:
        for field in (*FIELDS, TASK):
            self._indexes.pop((namespace, field), None)
        for doc in [d for d, ns in self._namespace_of.items() if ns == namespace]:
            self._text_at[doc] = DEAD
            self._context_from.pop(doc, None)

    def _advance(self, stream: str, events: Sequence[Opened]) -> None:
        if events:
            self._positions[stream] = events[-1].record.position
            self._since_snapshot += len(events)
            due = self._since_snapshot >= self.settings.snapshot_every
            if self.directory is not None and due and not self.defer_snapshots:
                self.snapshot()

    # -- reading -------------------------------------------------------------------------

    def search(
        self, namespace: str, query: Vectors, k: int, field: str = TEXT
    ) -> list[tuple[int, float]]:
        with self._guard.reading():
            index = self._indexes.get((namespace, field))
            if index is None or len(index) == 0 or k <= 0:
                return []
            ids, scores = index.search(query.reshape(1, -1), min(k, len(index)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def count(self, field: str = TEXT) -> int:
        return sum(len(index) for (_, f), index in self._indexes.items() if f == field)

    def checksums(self) -> dict[str, str]:
        """Content digests of the non-empty indexes (an index emptied by forgets answers as
        one never made: a rebuild makes none)."""
        return {
            f"{ns}/{field}": checksum(index)
            for (ns, field), index in sorted(self._indexes.items())
            if len(index)
        }

    # -- snapshots -----------------------------------------------------------------------

    def snapshot(self) -> None:
        """Write the indexes and fold state to a new directory, then swap it in; unless the
        snapshot on disk already holds them (nothing applied since it was written or loaded):
        a process that only read, or a close right after a periodic snapshot, rewrote every
        vector (~1 s at 10^5)."""
        if self.directory is None:
            return
        if self._since_snapshot == 0 and (self.directory / "manifest.json").exists():
            return
        tmp, old = _beside(self.directory)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._write_snapshot(tmp)
            for path in tmp.iterdir():  # durable before the swap: see `_finish_swap`
                fsync_path(path)
            fsync_path(tmp)
        except BaseException:  # a full disk, say: leave nothing half-written behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        fsync_path(self.directory.parent)
        shutil.rmtree(old, ignore_errors=True)
        self._since_snapshot = 0

    def _write_snapshot(self, tmp: Path) -> None:
        files = {}
        for n, ((namespace, field), index) in enumerate(sorted(self._indexes.items())):
            files[f"{field}/{namespace}"] = f"index{n}.npz"
            state = index.state() if isinstance(index, FaissIndex) else None
            if state is not None:  # the approximate index holds the vectors too
                state["dim"] = np.array([index.dim])
                np.savez(tmp / files[f"{field}/{namespace}"], **state)  # type: ignore[arg-type]
                continue
            ids, vectors = index.export()
            vectors = vectors.astype(self._storage_dtype)
            np.savez(tmp / files[f"{field}/{namespace}"], ids=ids, vectors=vectors)
        docs = np.array(list(self._text_at), np.int64)
        names = sorted(set(self._namespace_of.values()))
        code = {name: i for i, name in enumerate(names)}
        np.savez(
            tmp / "state.npz",
            docs=docs,
            text_at=np.array([self._text_at[int(d)] for d in docs], np.int64),
            namespace=np.array([code[self._namespace_of[int(d)]] for d in docs], np.int32),
            context_docs=np.array(list(self._context_from), np.int64),
            context_from=np.array(list(self._context_from.values()), np.int64),
        )
        manifest = {
            "positions": self._positions,
            "files": files,
            "namespaces": names,
            "model_id": self.model_id,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest))

    def _load(self, directory: Path) -> None:
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
            names = manifest["namespaces"]
            with _npz(directory / "state.npz") as state:
                self._text_at = dict(
                    zip(state["docs"].tolist(), state["text_at"].tolist(), strict=True)
                )
                self._namespace_of = {
                    int(d): names[int(c)]
                    for d, c in zip(state["docs"], state["namespace"], strict=True)
                }
                if "context_docs" not in state:
                    raise ProjectionError("snapshot predates the context map: rebuilt by replay")
                self._context_from = dict(
                    zip(state["context_docs"].tolist(), state["context_from"].tolist(), strict=True)
                )
            for key, name in manifest["files"].items():
                field, _, namespace = key.partition("/")
                with _npz(directory / name) as arrays:
                    if "vectors" not in arrays:
                        index = self._factory(int(arrays["dim"][0]))
                        if not isinstance(index, FaissIndex):
                            raise ProjectionError(f"{name} holds a FAISS index: FAISS must load it")
                        index.restore({k: arrays[k] for k in arrays.files})
                    else:
                        index = self._factory(int(arrays["vectors"].shape[1]))
                        index.upsert(arrays["ids"], arrays["vectors"].astype(np.float32))
                self._indexes[(namespace, field)] = index
            self._positions = {k: int(v) for k, v in manifest["positions"].items()}
            self.model_id = manifest["model_id"]
        except (
            OSError,
            KeyError,
            ValueError,
            IndexError,
            EOFError,
            RuntimeError,  # FAISS
            pa.ArrowException,  # zstd
            zipfile.BadZipFile,  # not an OSError
        ) as exc:
            raise ProjectionError(f"FAISS snapshot {directory} is unreadable: {exc}") from exc

    @staticmethod
    def drop(directory: Path) -> None:
        for path in (directory, *_beside(directory)):
            shutil.rmtree(path, ignore_errors=True)


def _beside(directory: Path) -> tuple[Path, Path]:
    """Where a snapshot is written before it is swapped in, and where the one it replaces
    is put aside meanwhile."""
    return directory.with_name(directory.name + ".tmp"), directory.with_name(
        directory.name + ".old"
    )


def _finish_swap(directory: Path) -> None:
    """Finish what a snapshot cut short by a crash left: with none under its name (the crash
    came between the swap's two renames), the new one, whole and durable before the first
    rename, is put in place (or the old one, if the new one is not there); then what is left
    beside it is removed (a half-written snapshot may hold vectors erased since)."""
    tmp, old = _beside(directory)
    if not directory.exists():
        for candidate in (tmp, old):
            if (candidate / "manifest.json").exists():
                candidate.rename(directory)
                fsync_path(directory.parent)
                break
    try:
        sweep_leftovers([p for p in (tmp, old) if p.exists()])
    except OSError as exc:
        raise ProjectionError(f"cannot remove a snapshot left half-written: {exc}") from exc


@contextlib.contextmanager
def _npz(path: Path) -> Iterator[Any]:
    """An .npz file's arrays. The file is opened here, not by numpy: `np.load` leaves its
    own handle open when the archive is damaged."""
    with path.open("rb") as f, np.load(f) as arrays:
        yield arrays


__all__ = ["Ids", "VectorProjection", "VectorSettings"]
