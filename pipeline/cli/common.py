"""What every `mnemo` command shares: where its memory is, and how it prints."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
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


def emit(args: argparse.Namespace, doc: Any, line: str) -> None:
    print(json.dumps(doc, ensure_ascii=False) if args.json else line)


def open_local(args: argparse.Namespace, *, read_only: bool = False) -> Memory:
    return Memory.open(home=args.home, config_file=args.config, actor="cli", read_only=read_only)


def open_client(args: argparse.Namespace, *, read_only: bool = False) -> Memory | RemoteMemory:
    """The running server of this data directory if there is one (`mnemo serve` holds the
    log), else the data directory in-process."""
    settings = load_settings(home=args.home, config_file=args.config)
    remote = running_server(settings.home)
    if remote is not None:
        return remote
    return Memory(settings, actor="cli", read_only=read_only)
