"""What every `mnemo` command shares: where its memory is, and how it prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Protocol

from mnemoflow.pipeline.api.client import RemoteMemory, running_server
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.memory import Memory

Handler = Callable[[argparse.Namespace], int]


class AddCommand(Protocol):
    """Adds a command (with the common options) to the parser; returns its sub-parser."""

    def __call__(
        self, name: str, handler: Handler, help: str, aliases: Sequence[str] = ()
    ) -> argparse.ArgumentParser: ...


class _NoPandas:
    """A finder that refuses pandas, for the one moment pyarrow first looks for it."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name == "pandas":
            raise ImportError("a one-shot mnemo command has no pandas objects")
        return None


def arrow_without_pandas() -> None:
    """pyarrow imports pandas (~0.3 s of a cold `mnemo recall`) the first time it builds an
    array from Python objects, to ask whether they are pandas objects; a one-shot command
    never has any. pyarrow looks once per process and remembers what it found, so refused
    here it never looks again (and `to_pandas`, or a later `import pandas`, still work)."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    refuse = _NoPandas()
    sys.meta_path.insert(0, refuse)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(refuse)


def emit(args: argparse.Namespace, doc: Any, line: str) -> None:
    print(json.dumps(doc, ensure_ascii=False) if args.json else line)


def open_local(args: argparse.Namespace, *, read_only: bool = False) -> Memory:
    return Memory.open(home=args.home, config_file=args.config, actor="cli", read_only=read_only)


def open_client(
    args: argparse.Namespace, *, read_only: bool = False, embeds: bool = False
) -> Memory | RemoteMemory:
    """The running server of this data directory if there is one (`mnemo serve` holds the
    log), else the data directory in-process; `embeds`: the command will embed here (the
    model then loads on a thread while the stores open)."""
    settings = load_settings(home=args.home, config_file=args.config)
    remote = running_server(settings.home)
    if remote is not None:
        return remote
    if embeds:
        from mnemoflow.actors.embedder import preload

        args.preloading = preload(settings.embedder)
    return Memory(settings, actor="cli", read_only=read_only)
