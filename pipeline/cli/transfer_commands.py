"""`mnemo export`, `import`, `backup` and `restore`: data out of a data directory and in."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from mnemoflow.eventlog.atomic import write_atomic_from
from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.eventlog.generations import read_layout
from mnemoflow.pipeline.api.client import RemoteMemory, running_server
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.transfer import ImportReport, source_rows
from mnemoflow.pipeline.cli.common import AddCommand, emit, open_client, open_local


def _cmd_export(args: argparse.Namespace) -> int:
    with open_client(args, read_only=True) as mem:
        lines = mem.export(args.ns, args.as_of)
        if args.out is None:
            _write(lines, sys.stdout)
            return 0
        out = Path(args.out)
        rows = _write_file(lines, out)
    emit(args, {"rows": rows, "out": str(out)}, f"exported {rows} rows to {out}")
    return 0


def _write(lines: Iterable[dict[str, Any]], to: TextIO) -> int:
    """Write the lines; the count of rows (the end line's)."""
    rows = 0
    for doc in lines:
        to.write(json.dumps(doc, ensure_ascii=False) + "\n")
        rows = int(doc["rows"]) if doc.get("end") else rows
    return rows


def _write_file(lines: Iterable[dict[str, Any]], out: Path) -> int:
    """Into `out` whole or not at all, readable by its owner only (the rows are in clear)."""
    rows = [0]

    def encoded() -> Iterator[bytes]:  # in writes of about a megabyte
        buffer: list[str] = []
        size = 0
        for doc in lines:
            rows[0] = int(doc["rows"]) if doc.get("end") else rows[0]
            buffer.append(json.dumps(doc, ensure_ascii=False) + "\n")
            size += len(buffer[-1])
            if size >= 1 << 20:
                yield "".join(buffer).encode()
                buffer, size = [], 0
        yield "".join(buffer).encode()

    try:
        write_atomic_from(out, encoded(), mode=0o600)
    except OSError as exc:
        raise ValidationError(f"cannot write {out}: {exc}") from exc
    return rows[0]


def _ns_map(pairs: Sequence[str] | None) -> dict[str, str]:
    mapping = {}
    for pair in pairs or ():
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValidationError(f"--ns-map takes OLD=NEW, got {pair!r}")
        mapping[old] = new
    return mapping


def _cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    mapping = _ns_map(args.ns_map)
    rows = None if args.format else source_rows(path, args.ns)
    if rows is None:  # one of the formats `mnemo ingest` reads
        from mnemoflow.pipeline.cli.service_commands import run_ingest

        if mapping:
            raise ValidationError("--ns-map applies to exports; name the namespace with --ns")
        return run_ingest(args, [path])
    remote = running_server(load_settings(home=args.home, config_file=args.config).home)
    if remote is not None:  # `mnemo serve` holds the log: the rows go through it
        from mnemoflow.pipeline.ingest.remote import wait_caught_up

        with remote:
            report = remote.import_rows(rows, mapping)
            wait_caught_up(remote, remote.health()["input_position"], stalled_after=120.0)
        return _imported(args, report, f" (through {remote.url})")
    with open_local(args) as mem:
        report = mem.import_rows(rows, mapping)
        mem.sync()
    return _imported(args, report, "")


def _imported(args: argparse.Namespace, report: ImportReport, where: str) -> int:
    line = (
        f"imported {report.rows} rows: {report.added} added, {report.present} already here, "
        f"in {report.seconds} s{where}"
    )
    emit(args, dataclasses.asdict(report), line)
    return 0


def _cmd_backup(args: argparse.Namespace) -> int:
    from mnemoflow.pipeline.api.backup import backup

    settings = load_settings(home=args.home, config_file=args.config)
    report = backup(settings, Path(args.dir), sealed=args.sealed)
    kind = "sealed backup" if report.sealed else "backup"
    line = f"{kind} of {settings.home} in {args.dir}: {report.files} files, {report.bytes:,} bytes"
    emit(args, dataclasses.asdict(report), f"{line}, {report.seconds} s")
    return 0


def _cmd_restore(args: argparse.Namespace) -> int:
    from mnemoflow.pipeline.api.backup import restore

    settings = load_settings(home=args.home, config_file=args.config)
    live = None if args.unseal_with is None else Path(args.unseal_with)
    report = restore(Path(args.dir), settings, unseal_with=live)
    line = (
        f"restored {args.dir} into {settings.home}: {report.events.get('input', 0)} input "
        f"events, {report.namespaces} namespaces, verify ok ({report.verified} events)"
    )
    if report.erased_since:
        line += f"; {report.erased_since} namespace(s) erased since the backup stay erased"
    emit(args, dataclasses.asdict(report), line)
    return 0


def _cmd_rederive(args: argparse.Namespace) -> int:
    from mnemoflow.pipeline.api.derivation import drop_old_generations, rederive, requested

    settings = load_settings(home=args.home, config_file=args.config)
    named = {
        "model": args.model,
        "tokenizer": args.tokenizer,
        "model_id": args.model_id,
        "llm_model": args.llm_model,
        "llm_base_url": args.llm_base_url,
    }
    remote = running_server(settings.home)
    if remote is not None:  # the service re-derives on a thread of its own, then switches
        with remote:
            return _rederive_through(args, remote)
    if (
        args.drop_old
        and not any(named.values())
        and read_layout(settings.home / "log").pending is None
    ):
        dropped = drop_old_generations(settings)
        emit(args, {"dropped": list(dropped)}, f"dropped generation(s) {list(dropped)}")
        return 0
    overrides = requested(settings, args.actor, **named)
    say = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    report = rederive(settings, args.actor, overrides, drop_old=args.drop_old, progress=say)
    line = (
        f"generation {report.generation} is current: {report.derived:,} events derived in "
        f"{report.seconds} s ({report.events_per_s:,}/s)"
    )
    if report.dropped:
        line += f"; dropped generation(s) {list(report.dropped)}"
    emit(args, dataclasses.asdict(report), line)
    return 0


def _rederive_through(args: argparse.Namespace, remote: RemoteMemory) -> int:
    from mnemoflow.pipeline.api.derivation import describe

    state = remote.rederive(
        args.actor,
        model=args.model,
        tokenizer=args.tokenizer,
        model_id=args.model_id,
        llm_model=args.llm_model,
        llm_base_url=args.llm_base_url,
        drop_old=args.drop_old,
    )
    while state["state"] == "running":
        time.sleep(0.5)
        state = remote.rederive_status()
        if "position" in state and not args.json:
            print(describe(state), file=sys.stderr, flush=True)
    if state["state"] != "switched":
        raise ValidationError(f"the re-derivation {state['state']}: {state.get('error', '')}")
    line = f"generation {state['generation']} is current (through {remote.url})"
    emit(args, state, line)
    return 0


def add_transfer_commands(command: AddCommand) -> None:
    p = command("export", _cmd_export, "write what was said to namespaces as JSON Lines")
    p.add_argument("--ns", action="append", help="a namespace to export (default: all)")
    p.add_argument("--as-of", help="up to this input position or ISO 8601 time")
    p.add_argument("--out", help="the file to write (default: standard output)")

    p = command("import", _cmd_import, "read an export, a mem0 export, or an ingest file")
    p.add_argument("file", help="a `mnemo export` file, mem0's JSON, or a file `ingest` reads")
    p.add_argument("--ns-map", action="append", help="OLD=NEW: import OLD's rows into NEW")
    p.add_argument("--ns", help="the namespace of rows that name none (mem0, ingest formats)")
    p.add_argument(
        "--format",
        choices=["jsonl", "csv", "parquet", "locomo", "chatgpt"],
        help="read the file as `mnemo ingest` does, in this format",
    )
    p.set_defaults(paths=None, batch_size=2000, actors=None, ray_address=None, compare=False)

    p = command("backup", _cmd_backup, "copy the data directory, consistently, while it runs")
    p.add_argument("dir", help="a new (or empty) directory for the backup")
    p.add_argument(
        "--sealed",
        action="store_true",
        help="keep no key in clear: restorable only beside this data directory, and an "
        "erase here reaches the backup's copy",
    )

    p = command(
        "rederive", _cmd_rederive, "replay the history through a new model, then switch to it"
    )
    p.add_argument(
        "actor", choices=["embedder", "extractor"], help="the actor whose streams to re-derive"
    )
    p.add_argument("--model", help="the new ONNX model, PACKAGE:PATH of an installed package")
    p.add_argument("--tokenizer", help="its tokenizer.json, PACKAGE:PATH")
    p.add_argument("--model-id", help="the new vectors' model id (default: from --model)")
    p.add_argument("--llm-model", help="extractor: the LLM's model (none: this version's rules)")
    p.add_argument("--llm-base-url", help="extractor: the OpenAI-compatible endpoint")
    p.add_argument("--drop-old", action="store_true", help="remove replaced generations")

    p = command("restore", _cmd_restore, "restore a backup into a new data directory (--home)")
    p.add_argument("dir", help="the backup's directory")
    p.add_argument("--unseal-with", help="a sealed backup: the live data directory")
