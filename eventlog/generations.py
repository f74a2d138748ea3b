"""Generations of derived streams: how a new model or actor version replays the history
without touching what recall reads until it is done.

A re-derivation writes a new generation of the streams it changes (the embedder's
`embedded`, and what is derived from it downstream) beside the current ones, under
`generations/<G>/<stream>`; the first generation stays where streams always were,
`streams/<stream>`. Streams it does not change (the input above all) are shared. The layout
file says which generation of each stream is current, the settings the current generation was
derived with (the embedder's model, which must also embed queries), and the generation being
written, if any. Switching is replacing that file: one rename. Old generations stay until
dropped; their events are sealed with the namespaces' keys like every other, so an erase
reaches them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnemoflow.eventlog.atomic import write_atomic
from mnemoflow.eventlog.errors import LogError

LAYOUT_FILE = "generations.json"
GENERATIONS_DIR = "generations"


@dataclass(frozen=True, slots=True)
class Pending:
    generation: int
    actor: str
    streams: tuple[str, ...]
    settings: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Layout:
    """Which generation of each derived stream is current (a stream not named: the first)."""

    current: int = 1
    streams: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # e.g. {"embedder": {...}}
    pending: Pending | None = None

    def generation_of(self, stream: str) -> int:
        return self.streams.get(stream, 1)

    def with_pending(self) -> dict[str, int]:
        """Stream generations as the pending generation will make them current."""
        if self.pending is None:
            return dict(self.streams)
        return self.streams | {s: self.pending.generation for s in self.pending.streams}

    def to_json(self) -> dict[str, Any]:
        pending = self.pending
        return {
            "current": self.current,
            "streams": self.streams,
            "settings": self.settings,
            "pending": None
            if pending is None
            else {
                "generation": pending.generation,
                "actor": pending.actor,
                "streams": list(pending.streams),
                "settings": pending.settings,
            },
        }


def stream_directory(log_dir: Path, name: str, generation: int) -> Path:
    if generation == 1:
        return log_dir / "streams" / name
    return log_dir / GENERATIONS_DIR / str(generation) / name


def read_layout(log_dir: Path) -> Layout:
    path = log_dir / LAYOUT_FILE
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return Layout()
    except (OSError, ValueError) as exc:
        raise LogError(f"{path} cannot be read: {exc}") from exc
    try:
        pending = doc.get("pending")
        return Layout(
            current=int(doc["current"]),
            streams={str(k): int(v) for k, v in doc["streams"].items()},
            settings=dict(doc["settings"]),
            pending=None
            if pending is None
            else Pending(
                int(pending["generation"]),
                str(pending["actor"]),
                tuple(pending["streams"]),
                dict(pending["settings"]),
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise LogError(f"{path} is malformed: {exc}") from exc


def write_layout(log_dir: Path, layout: Layout) -> None:
    """Replace the layout in one step (the switch of a re-derivation is this rename)."""
    try:
        write_atomic(log_dir / LAYOUT_FILE, json.dumps(layout.to_json(), indent=1).encode())
    except OSError as exc:
        raise LogError(f"cannot write {log_dir / LAYOUT_FILE}: {exc}") from exc
