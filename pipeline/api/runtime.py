"""The embedded runtime: the log, the actors that follow it, and the projections folded from it.

One-shot calls run the actors inline, in this process. (The Ray runner executes the same
followers as actors; see the actors issue.)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mnemoflow.actors.embedder import EmbedderActor
from mnemoflow.actors.follower import Follower, close_followers, derived_event_id
from mnemoflow.actors.inline import LogHistory, resume_position, run_follower
from mnemoflow.actors.query.engine import QueryEngine
from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog.atomic import write_atomic
from mnemoflow.eventlog.derived import MemoryConsolidated
from mnemoflow.eventlog.schema import (
    CONSOLIDATED_STREAM,
    EMBEDDED_STREAM,
    EXTRACTED_STREAM,
    INPUT_STREAM,
    LINKED_STREAM,
    MEMORY_STORED,
    MEMORY_UPDATED,
)
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.errors import ProjectionLag
from mnemoflow.pipeline.api.topology import DEFAULT_TOPOLOGY, RECALL_NEEDS
from mnemoflow.projections.duck import wal_path
from mnemoflow.projections.projector import DUCKDB_FILE, FAISS_DIR, AsOf, Projector, disk_bytes

AS_OF_MARKER = "as_of.json"
VIEWS_DIR = "views"  # under the data directory: where its past views were built


def register_view(home: Path, directory: Path) -> None:
    """Note where a past view of this home's log is kept (it holds plaintext)."""
    where = str(directory.resolve())
    entry = home / VIEWS_DIR / f"{hashlib.sha256(where.encode()).hexdigest()[:16]}.json"
    if not entry.exists():
        entry.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(entry, json.dumps({"path": where}).encode(), mode=0o600)


def drop_views(home: Path) -> None:
    """Drop the projections of every past view of this home's log, wherever it was built,
    keeping its marker: opened again, it is rebuilt from the log as it stands (an erasure
    applied). Entries of views since removed go too."""
    for entry in sorted((home / VIEWS_DIR).glob("*.json")):
        directory = Path(json.loads(entry.read_text())["path"])
        if (directory / AS_OF_MARKER).exists():
            Projector.drop(directory)
        else:
            entry.unlink(missing_ok=True)


def view_of(home: Path) -> tuple[Path, int] | None:
    """A folder a past view was built in (`rebuild --as-of P --into DIR`) opens as a home:
    the data directory whose log it views, and the position. None: not such a folder."""
    marker = home / AS_OF_MARKER
    if (home / "log").exists() or not marker.exists():
        return None
    view = json.loads(marker.read_text())
    return Path(view["log"]).parent, int(view["position"])


@dataclass(frozen=True, slots=True)
class SyncReport:
    derived: int
    applied: int


class Runtime:
    def __init__(
        self,
        event_log: EventLog,
        settings: Settings,
        *,
        as_of: AsOf | None = None,
        projections_dir: Path | None = None,
        inline_actors: bool = True,
    ) -> None:
        """`inline_actors` False: the actors run elsewhere (the service's Ray actors) and
        `sync` only folds what they wrote."""
        self.inline_actors = inline_actors
        self._project_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._opening = threading.RLock()
        self._progress = threading.Condition()
        self.log = event_log
        self.settings = settings
        self.as_of = as_of
        self.topology = DEFAULT_TOPOLOGY
        history = LogHistory(event_log)
        self.followers: list[Follower] = [n.make(settings, history) for n in self.topology.nodes]
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if projections_dir is None:
            if as_of is None:
                projections_dir = settings.home / "projections"
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="mnemo-as-of-")
                projections_dir = Path(self._tmp.name)
        self.projections_dir = projections_dir
        self._projector: Projector | None = None
        self._engine: QueryEngine | None = None
        self._rates: dict[str, tuple[int, float]] = {}  # actor -> (events, seconds working)
        self._done: dict[str, int] = {}  # actor -> upstream position processed through

    def follower(self, name: str) -> Follower:
        return next(f for f in self.followers if f.name == name)

    @property
    def projector(self) -> Projector:
        with self._opening:  # the service's threads may all ask first
            if self._projector is None:
                self._projector = self._open_projector()
            return self._projector

    def _open_projector(self) -> Projector:
        directory = self.projections_dir
        if self.as_of is not None:
            marker = directory / AS_OF_MARKER
            # the log it is a view of: the folder opens as a home (see `view_of`)
            wanted = {"position": self.as_of.input_stop(self.log), "log": str(self.log.directory)}
            if marker.exists() and json.loads(marker.read_text()) != wanted:
                Projector.drop(directory)  # built for another point in time
            directory.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps(wanted))
            if self._tmp is None:  # it outlives this process: an erase must find it
                register_view(self.settings.home, directory)
        return Projector(
            directory,
            self.settings.vectors,
            batch_size=self.settings.projections.batch_size,
            streams=[(n.output, n.upstream) for n in self.topology.nodes],
            aside_above=self.settings.projections.aside_above or None,
        )

    @property
    def engine(self) -> QueryEngine:
        with self._opening:
            return self._open_engine()

    def _open_engine(self) -> QueryEngine:
        if self._engine is None:
            embedder = next(f for f in self.followers if isinstance(f, EmbedderActor))
            p = self.projector
            self._engine = QueryEngine(
                p.duck,
                p.vectors,
                embedder.embedder.embed,
                self.settings.query,
                self.settings.lexical,
                self.settings.decay,
            )
        return self._engine

    def project(self) -> int:
        """Fold what is new in the log into the projections (no model needed). One caller
        at a time: in the service the pump and an explicit sync may meet here."""
        with self._project_lock:
            applied = self.projector.catch_up(self.log, self.as_of)
        with self._progress:
            self._progress.notify_all()  # readers waiting for a position look again
        return applied

    def sync(self) -> SyncReport:
        """Run every actor over what is new, then fold it all into the projections. One
        caller at a time (an HTTP server over an inline Memory calls from many threads)."""
        with self._sync_lock, self.log.remembering():
            return self._sync()

    def _sync(self) -> SyncReport:
        derived = 0
        if self.as_of is None and self.log.writable and self.inline_actors:
            for follower in self.followers:
                began = time.perf_counter()
                read, made, self._done[follower.name] = run_follower(
                    self.log,
                    follower,
                    batch_size=self.settings.projections.actor_batch_size,
                    start_after=self._done.get(follower.name),
                )
                if read:
                    total, seconds = self._rates.get(follower.name, (0, 0.0))
                    self._rates[follower.name] = (
                        total + read,
                        seconds + time.perf_counter() - began,
                    )
                derived += made
        return SyncReport(derived, self.project())

    def progress(self, actor: str) -> int:
        """The upstream position an actor has processed through."""
        known = self._done.get(actor)
        return known if known is not None else resume_position(self.log, self.follower(actor))

    def advance(self, actor: str, position: int) -> None:
        """Someone did the actor's work up to `position` (batch ingestion): skip it."""
        self._done[actor] = max(position, self.progress(actor))

    def refresh(self) -> None:
        """Before a read: inline, catch the projections up; with external actors the
        service's pump does that, and the projections are read as they stand."""
        if self.inline_actors:
            self.project()

    def wait_for(self, position: int, timeout: float) -> None:
        """Read-your-writes: return once recall sees the input up to `position` — the last
        memory text at or before it extracted and embedded, and all of that folded into the
        projections. (Links and merges, one actor further on, may trail by a batch.) Inline
        this is one sync; with external actors it polls, and raises ProjectionLag after
        `timeout` seconds."""
        if self.inline_actors:
            self.sync()
            return
        deadline = time.monotonic() + timeout
        text = _last_text_at_or_before(self.log, position)
        with self._progress:  # woken by each projection round (the service's pump)
            while not self._reached(position, text):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProjectionLag(
                        f"the projections did not reach position {position} within {timeout} s"
                    )
                self._progress.wait(min(left, 0.25))

    def decision(self, position: int, memory_id: str, timeout: float) -> MemoryConsolidated | None:
        """What the consolidator decided about the memory stored at input `position`: merged
        into an earlier one (`duplicate`), or superseding one (`supersedes`); None: it stays
        a memory of its own. Waits until the consolidator has read it (inline: one sync);
        ProjectionLag after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.inline_actors:
                self.sync()
            found = self._decision(position, memory_id)
            if found is not _UNDECIDED:
                return cast(MemoryConsolidated | None, found)
            if time.monotonic() > deadline:
                raise ProjectionLag(
                    f"the consolidator did not reach position {position} within {timeout} s"
                )
            time.sleep(0.05)

    def _decision(self, position: int, memory_id: str) -> object:
        source = (INPUT_STREAM, position)
        for stream in (EXTRACTED_STREAM, LINKED_STREAM):  # the memory's chain of events
            events = self.log.stream(stream)
            events.refresh()
            found = events.get(derived_event_id(stream, source[1], 0))
            if found is None:
                return _UNDECIDED
            source = (stream, found.position)
        decisions = self.log.stream(CONSOLIDATED_STREAM)
        decisions.refresh()
        if resume_position(self.log, self.follower("consolidator")) < source[1]:
            return _UNDECIDED
        for record in decisions.read(memory_id=memory_id):
            payload = self.log.open_payload(record)
            if isinstance(payload, MemoryConsolidated):
                return payload
        return None

    def sees(self, position: int) -> bool:
        """Whether recall sees the input up to `position` now (see `wait_for`)."""
        return self._reached(position, _last_text_at_or_before(self.log, position))

    def _reached(self, position: int, text: int) -> bool:
        p = self.projector
        if p.duck.applied(INPUT_STREAM) < position:
            return False
        if not text:
            return True
        for name in RECALL_NEEDS:
            stream = self.log.stream(name)
            derived = stream.get(derived_event_id(name, text, 0))
            if derived is None:
                stream.refresh()  # its writer is another process
                return False
            folded = p.duck.applied(name)
            if name == EMBEDDED_STREAM:
                folded = min(folded, p.vectors.applied(name))
            if folded < derived.position:
                return False
        return True

    def rebuild(self) -> int:
        """Drop every projection and replay the log into fresh ones."""
        self.close()
        Projector.drop(self.projections_dir)
        return self.project()

    def stats(self) -> dict[str, Any]:
        streams = {name: self.log.stream(name).last_position for name in self.log.stream_names()}
        p = self.projector
        derived = [INPUT_STREAM, *self.topology.streams]
        projections = {
            "duckdb": {"applied": {name: p.duck.applied(name) for name in derived}},
            "faiss": {
                "applied": {
                    INPUT_STREAM: p.vectors.applied(INPUT_STREAM),
                    EMBEDDED_STREAM: p.vectors.applied(EMBEDDED_STREAM),
                }
            },
        }
        for entry in projections.values():
            entry["lag"] = {
                name: streams.get(name, 0) - position for name, position in entry["applied"].items()
            }
        actors = {}
        for follower in self.followers:
            done = self._done.get(follower.name) or resume_position(self.log, follower)
            upstream = streams.get(follower.upstream, 0)
            total, seconds = self._rates.get(follower.name, (0, 0.0))
            actors[follower.name] = {
                "processed": done,
                "lag": upstream - done,
                # while working, in this process (None until it has processed something)
                "events_per_s": round(total / seconds, 1) if seconds else None,
            }
        disk = {
            "log": disk_bytes(self.log.directory),
            "duckdb": disk_bytes(self.projections_dir / DUCKDB_FILE)
            + disk_bytes(wal_path(self.projections_dir / DUCKDB_FILE)),
            "faiss": disk_bytes(self.projections_dir / FAISS_DIR),
        }
        disk["total"] = sum(disk.values())
        counts = p.duck.counts()
        return {
            "streams": {name: {"events": n} for name, n in streams.items()},
            "projections": projections,
            "actors": actors,
            "memories": {
                "by_status": counts,
                "total": sum(counts.values()),
                "vectors": p.vectors.count(),
            },
            "disk_bytes": disk,
        }

    def close(self) -> None:
        engine, self._engine = self._engine, None
        projector, self._projector = self._projector, None
        with contextlib.ExitStack() as parts:  # each closed whatever the other raises
            parts.callback(close_followers, self.followers)
            if projector is not None:
                parts.callback(projector.close)
            if engine is not None:
                engine.close()

    def cleanup(self) -> None:
        tmp, self._tmp = self._tmp, None
        with contextlib.ExitStack() as parts:
            if tmp is not None:
                parts.callback(tmp.cleanup)
            self.close()


_UNDECIDED = object()  # the consolidator has not read the memory yet


def _last_text_at_or_before(event_log: EventLog, position: int, reach: int = 1000) -> int:
    """The input position of the last memory text (stored or updated) at or before
    `position`: what every input follower derives from (0 if none within `reach`). Looks
    back a few events at a time: usually the position itself is the text."""
    end, step = position, 8
    while end >= max(1, position - reach):
        start = max(1, end - step + 1)
        texts = [
            r for r in event_log.input.read(start, end) if r.kind in (MEMORY_STORED, MEMORY_UPDATED)
        ]
        for record in reversed(texts):
            if event_log.open_payload(record) is not None:  # erased since: nothing derives
                return record.position
        end, step = start - 1, step * 4
    return 0
