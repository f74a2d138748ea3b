"""`mnemo rederive embedder --model PACKAGE:PATH` (a new model) or `mnemo rederive extractor
[--llm-model M --llm-base-url U]` (new rules, or an LLM), replayed over the whole history.

The actor's stream, and those derived from it (the linker reads the embedder's vectors and
the extractor's facts, the consolidator the linker's links), are written again as a new
generation (see `mnemoflow.eventlog.generations`) from the whole input, with the new
settings, beside the current ones; the new generation's projections are built in a
directory of their own. Until the switch everything reads the current generation; the switch
(one file replaced) makes the new one current, settings included, so recall embeds queries
with the new model: a recall uses the old vectors or the new, never a mix. The old generation
is kept until dropped (`--drop-old`). A re-derivation cut short (a crash, an interrupt)
resumes where it stopped when run again with the same settings: each actor resumes from what
its new stream records.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pydantic

from mnemoflow.actors.embedder import EmbedderSettings, ModelNotFound, resolve
from mnemoflow.actors.follower import Follower
from mnemoflow.actors.inline import run_follower
from mnemoflow.actors.llm import LLMSettings
from mnemoflow.eventlog import EventLog
from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.eventlog.generations import (
    GENERATIONS_DIR,
    Layout,
    Pending,
    read_layout,
    stream_directory,
    write_layout,
)
from mnemoflow.eventlog.schema import (
    CONSOLIDATED_STREAM,
    EMBEDDED_STREAM,
    EXTRACTED_STREAM,
    INPUT_STREAM,
    LINKED_STREAM,
)
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.generation import projections_directory, with_generation
from mnemoflow.pipeline.api.runtime import Runtime

# The streams an actor's re-derivation writes anew: its own and those derived from it.
LEAD_BATCHES = 8  # the re-derived actor takes this many actor batches a step (the model's)

REDERIVES: dict[str, tuple[str, ...]] = {
    "embedder": (EMBEDDED_STREAM, LINKED_STREAM, CONSOLIDATED_STREAM),
    "extractor": (EXTRACTED_STREAM, LINKED_STREAM, CONSOLIDATED_STREAM),
}


@dataclass(frozen=True, slots=True)
class RederiveReport:
    generation: int
    derived: int  # events written into the new generation by this run
    seconds: float
    events_per_s: float
    switched: bool  # False: stopped before the end (run again to resume)
    dropped: tuple[int, ...]  # old generations removed


def embedder_overrides(
    settings: Settings, model: str | None, tokenizer: str | None, model_id: str | None
) -> dict[str, Any]:
    """The embedder settings a re-derivation changes, checked: the files are installed and
    the model has an id of its own (vectors of two models must never be compared)."""
    changes = {
        k: v
        for k, v in {"model": model, "tokenizer": tokenizer, "model_id": model_id}.items()
        if v is not None
    }
    current = settings.embedder
    if model is not None and model_id is None:
        changes["model_id"] = model.rsplit(":", 1)[-1] + "@" + model.split(":", 1)[0]
    try:
        merged = EmbedderSettings.model_validate(current.model_dump() | changes)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"embedder settings: {exc.errors()[0]['msg']}") from None
    for spec in (merged.model, merged.tokenizer):
        try:
            resolve(spec)
        except ModelNotFound as exc:
            raise ValidationError(f"{exc}: name a file of an installed package") from None
    if merged.model_id == current.model_id:
        raise ValidationError(
            f"the new vectors need a model id other than the current {current.model_id!r} "
            "(--model-id)"
        )
    return {"embedder": changes}


def begin(settings: Settings, actor: str, overrides: dict[str, Any]) -> Layout:
    """The layout with this re-derivation pending: started now, or the one under way with the
    same settings (resumed). Another one under way is refused."""
    if actor not in REDERIVES:
        raise ValidationError(f"re-derivation covers {', '.join(REDERIVES)}, not {actor!r}")
    log_dir = settings.home / "log"
    layout = read_layout(log_dir)
    pending = layout.pending
    if pending is not None and (pending.actor, pending.settings) != (actor, overrides):
        raise ValidationError(
            f"generation {pending.generation} (re-deriving the {pending.actor} with "
            f"{pending.settings}) is under way: run it again with those settings to finish it"
        )
    if pending is None:
        pending = Pending(_next_generation(settings, layout), actor, REDERIVES[actor], overrides)
        layout = Layout(layout.current, layout.streams, layout.settings, pending)
        write_layout(log_dir, layout)
    return layout


class Rederivation:
    """The generation being written: a view of the log with its streams in the new
    generation, and a runtime with the new settings whose projections are its own.

    `log`: the log to write through, opened on the pending generation (embedded: the
    process's own, writable, and every actor runs, the shared ones catching up too); None:
    a view of its own that writes only the new generation's streams (beside a service,
    whose actors go on writing the shared ones)."""

    def __init__(self, settings: Settings, layout: Layout, log: EventLog | None = None) -> None:
        assert layout.pending is not None
        self.pending = layout.pending
        self.layout = layout
        self.settings = with_generation(settings, layout.settings | self.pending.settings)
        self._own_log = log is None
        self.log = log or EventLog(
            settings.home / "log",
            settings.log,
            writable=False,
            writes=set(self.pending.streams),
            generations=layout.with_pending(),
        )
        folder = projections_directory(settings.home, self.pending.generation)
        self.runtime = Runtime(self.log, self.settings, projections_dir=folder)
        self.followers = [
            f
            for f in self.runtime.followers
            if self.log.writable or f.output in self.pending.streams
        ]
        self.lead = next(f for f in self.followers if f.name == self.pending.actor)
        self.derived = 0
        self._counting = threading.Lock()
        self.began = time.perf_counter()

    def round(self, stop: int | None = None) -> int:
        """One batch per actor (those that follow the input: up to its position `stop`); the
        upstream events read (0: caught up)."""
        batch = self.settings.projections.actor_batch_size
        return sum(
            self._step(f, batch, stop if f.upstream == INPUT_STREAM else None)
            for f in self.followers
        )

    def lead_round(self) -> int:
        """One large batch of the re-derived actor itself: the model's work, which runs
        outside the GIL while `others_round` runs beside it on another thread."""
        return self._step(self.lead, LEAD_BATCHES * self.settings.projections.actor_batch_size)

    def others_round(self) -> int:
        """A batch of each other actor, and the new projections folded as far as they go."""
        batch = self.settings.projections.actor_batch_size
        moved = sum(self._step(f, batch) for f in self.followers if f is not self.lead)
        self.runtime.project()
        return moved

    def _step(self, follower: Follower, batch: int, stop: int | None = None) -> int:
        step = run_follower(self.log, follower, batch_size=batch, max_batches=1, stop=stop)
        with self._counting:
            self.derived += step.derived
        return step.read

    def progress(self) -> dict[str, Any]:
        seconds = time.perf_counter() - self.began
        return {
            "generation": self.pending.generation,
            "actor": self.pending.actor,
            "position": self.runtime.progress(self.pending.actor),
            "total": self.log.input.last_position,
            "derived": self.derived,
            "events_per_s": round(self.derived / seconds if seconds else 0.0, 1),
        }

    def switch(self) -> Layout:
        """Fold what is new into the new projections, close them and the new streams (their
        actors may start elsewhere now), then make the generation current."""
        self.runtime.project()
        self.close()
        layout = Layout(
            current=self.pending.generation,
            streams=self.layout.with_pending(),
            settings=self.layout.settings | self.pending.settings,
            pending=None,
        )
        write_layout(self.settings.home / "log", layout)  # from here on, the new generation
        return layout

    def close(self) -> None:
        self.runtime.close()
        if self._own_log:
            self.log.close()


def extractor_overrides(
    settings: Settings, llm_model: str | None, llm_base_url: str | None
) -> dict[str, Any]:
    """The LLM a re-derivation of the extractor uses; none named: this version's rules (and
    the LLM as configured), replayed over the history."""
    changes = {
        k: v for k, v in {"model": llm_model, "base_url": llm_base_url}.items() if v is not None
    }
    if not changes:
        return {}
    try:
        LLMSettings.model_validate(settings.llm.model_dump() | changes)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"llm settings: {exc.errors()[0]['msg']}") from None
    return {"llm": changes}


def requested(settings: Settings, actor: str, **named: str | None) -> dict[str, Any]:
    """The overrides a request names (`model`, `tokenizer`, `model_id` for the embedder;
    `llm_model`, `llm_base_url` for the extractor), or, naming none, those of the
    re-derivation of that actor under way (to resume it)."""
    given = {k: v for k, v in named.items() if v}
    if actor not in REDERIVES:
        raise ValidationError(f"re-derivation covers {', '.join(REDERIVES)}, not {actor!r}")
    if given and actor == "embedder":
        return embedder_overrides(
            settings, given.get("model"), given.get("tokenizer"), given.get("model_id")
        )
    if given:
        return extractor_overrides(settings, given.get("llm_model"), given.get("llm_base_url"))
    pending = read_layout(settings.home / "log").pending
    if pending is not None and pending.actor == actor:
        return pending.settings
    if actor == "extractor":
        return {}
    raise ValidationError("name the new model: --model PACKAGE:PATH [--model-id ID]")


def rederive(
    settings: Settings,
    actor: str,
    overrides: dict[str, Any],
    *,
    drop_old: bool = False,
    progress: Callable[[str], None] | None = None,
    max_rounds: int | None = None,
) -> RederiveReport:
    """Write the new generation of `actor`'s streams, build its projections, switch to it,
    in this process (no service runs on the data directory). `max_rounds`: stop after so many
    rounds of one batch per actor (run again to resume)."""
    layout = begin(settings, actor, overrides)
    assert layout.pending is not None
    with EventLog(settings.home / "log", settings.log, generations=layout.with_pending()) as log:
        work = Rederivation(settings, layout, log)
        try:
            with _beside(work.others_round):
                rounds = 0
                while work.lead_round():
                    rounds += 1
                    if progress is not None:
                        progress(describe(work.progress()))
                    if max_rounds is not None and rounds >= max_rounds:
                        return _done(work, switched=False)
            while work.round():  # the others' last batches
                pass
            final = work.progress()
            work.switch()
        finally:
            work.close()
    shutil.rmtree(projections_directory(settings.home, layout.current), ignore_errors=True)
    dropped = drop_old_generations(settings) if drop_old else ()
    if progress is not None:
        progress(describe(final))
    return _done(work, switched=True, dropped=dropped)


@contextlib.contextmanager
def _beside(work: Callable[[], int]) -> Iterator[None]:
    """`work` called over and over on a thread of its own while the block runs (resting a
    little when it found nothing to do); its error, if any, raised when the block ends."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                if not work():
                    stop.wait(0.05)
        except BaseException as exc:  # reported to the caller below
            failed.append(exc)

    thread = threading.Thread(target=loop, name="mnemo-rederive-beside", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
    if failed:
        raise failed[0]


def describe(state: dict[str, Any]) -> str:
    return (
        f"generation {state['generation']}: {state['actor']} at input {state['position']:,} "
        f"of {state['total']:,}, {state['derived']:,} events derived, "
        f"{state['events_per_s']:,.0f}/s"
    )


def _next_generation(settings: Settings, layout: Layout) -> int:
    root = settings.home / "log" / GENERATIONS_DIR
    on_disk = [int(p.name) for p in root.iterdir() if p.name.isdigit()] if root.exists() else []
    return max([layout.current, *layout.streams.values(), *on_disk]) + 1


def _done(work: Rederivation, *, switched: bool, dropped: tuple[int, ...] = ()) -> RederiveReport:
    seconds = time.perf_counter() - work.began
    return RederiveReport(
        generation=work.pending.generation,
        derived=work.derived,
        seconds=round(seconds, 2),
        events_per_s=round(work.derived / seconds if seconds else 0.0, 1),
        switched=switched,
        dropped=dropped,
    )


def drop_old_generations(settings: Settings) -> tuple[int, ...]:
    """Remove the streams of generations that are neither current nor being written."""
    log_dir = settings.home / "log"
    layout = read_layout(log_dir)
    keep = set(layout.with_pending().items())
    dropped: set[int] = set()
    candidates = [(name, 1) for name in layout.streams]  # first-generation copies replaced
    root = log_dir / GENERATIONS_DIR
    if root.exists():
        for generation_dir in root.iterdir():
            if generation_dir.name.isdigit():
                candidates += [(p.name, int(generation_dir.name)) for p in generation_dir.iterdir()]
    for name, generation in candidates:
        if (name, generation) in keep or (generation == 1 and name not in layout.streams):
            continue
        shutil.rmtree(stream_directory(log_dir, name, generation), ignore_errors=True)
        dropped.add(generation)
    if root.exists():
        for generation_dir in root.iterdir():
            if generation_dir.is_dir() and not any(generation_dir.iterdir()):
                generation_dir.rmdir()
    return tuple(sorted(dropped))
