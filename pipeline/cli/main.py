"""The `mnemo` command line. Every command takes --home, --config and --json."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import mnemoflow
from mnemoflow.eventlog import EventLog, EventView
from mnemoflow.eventlog.errors import MemoryNotFound, MnemoError, ValidationError
from mnemoflow.eventlog.payloads import Metadata
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.logsetup import configure_logging
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.wire import contradiction_json, lost_rows
from mnemoflow.pipeline.cli.common import (
    AddCommand,
    Handler,
    arrow_without_pandas,
    emit,
    open_client,
    open_local,
)
from mnemoflow.pipeline.cli.episode_commands import add_episode_commands
from mnemoflow.pipeline.cli.output import (
    audit_lines,
    event_line,
    explain_hit,
    receipt_json,
    record_json,
    report_json,
    row_line,
    stats_lines,
)
from mnemoflow.pipeline.cli.service_commands import add_service_commands
from mnemoflow.pipeline.cli.transfer_commands import add_transfer_commands


def _text_arg(value: str) -> str | bytes:
    """`-` reads the text from standard input, as bytes, so invalid UTF-8 is caught."""
    return sys.stdin.buffer.read() if value == "-" else value


def _meta(pairs: Sequence[str] | None) -> Metadata | None:
    if not pairs:
        return None
    out: Metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"--meta takes key=value, got {pair!r}")
        out[key] = value
    return out


def _at(value: str | None) -> datetime | None:
    """`--at`, read here so that a bad one is named as the user typed it."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"--at {value!r} is not an ISO 8601 time (e.g. 2023-05-08T13:56:00+02:00)"
        ) from None


def _cmd_store(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.store(_text_arg(args.text), args.ns, _meta(args.meta), _at(args.at), args.id)
    emit(args, receipt_json(r), f"stored {r.memory_id} (event {r.event_id}, position {r.position})")
    return 0


def _cmd_update(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.update(
            args.memory_id, _text_arg(args.text), _meta(args.meta), _at(args.at), args.id
        )
    emit(args, receipt_json(r), f"updated {r.memory_id} (position {r.position})")
    return 0


def _cmd_forget(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.forget(args.memory_id, args.reason, args.id)
    emit(args, receipt_json(r), f"forgot {r.memory_id} (position {r.position})")
    return 0


def _cmd_feedback(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.feedback(args.memory_id, args.useful, args.note, args.id)
    word = "useful" if args.useful else "not useful"
    emit(args, receipt_json(r), f"recorded {word} for {r.memory_id} (position {r.position})")
    return 0


def _cmd_erase(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.erase(args.ns)
    emit(args, receipt_json(r), f"erased namespace {args.ns} (position {r.position})")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    if args.heads or args.anchor:
        return _verify_heads(args)
    with open_client(args, read_only=True) as mem:
        report = mem.verify()
    for stream in report.streams:
        for first, last, why in lost_rows(stream):
            print(f"stream {stream.stream}: positions {first}-{last} lost: {why}", file=sys.stderr)
    if report.ok:
        line = f"ok: {report.checked} events checked in {len(report.streams)} stream(s)"
    else:
        line = (
            f"FAILED: stream {report.stream}, position {report.first_bad_position}, "
            f"segment {report.segment}: {report.reason}"
        )
    emit(args, report_json(report), line)
    return 0 if report.ok else 1


def _verify_heads(args: argparse.Namespace) -> int:
    """--heads: print each stream's signed head (keep it elsewhere); --anchor FILE: check the
    log against heads printed before. Read-only, beside a running server too."""
    settings = load_settings(home=args.home, config_file=args.config)
    with EventLog(settings.home / "log", settings.log, writable=False) as log:
        if args.heads:
            print(json.dumps(log.heads(), indent=2, sort_keys=True))
            return 0
        try:
            kept = json.loads(Path(args.anchor).read_text())
        except (OSError, ValueError) as exc:
            raise ValidationError(f"cannot read heads from {args.anchor}: {exc}") from exc
        if not isinstance(kept, dict):
            raise ValidationError(f"{args.anchor} is not a JSON object of heads by stream")
        problems = log.check_anchor(kept)
    for line in problems:
        print(f"FAILED: {line}")
    if not problems:
        print(f"ok: the log holds every head in {args.anchor} ({len(kept)} stream(s))")
    return 1 if problems else 0


def _print_events(args: argparse.Namespace, events: Sequence[EventView] | Any) -> None:
    for e in events:
        print(json.dumps(e.to_json(), ensure_ascii=False) if args.json else event_line(e))


def _cmd_log(args: argparse.Namespace) -> int:
    with open_local(args, read_only=True) as mem:
        _print_events(
            args,
            mem.events(namespace=args.ns, start=args.start, kind=args.kind, stream=args.stream),
        )
    return 0


def _cmd_audit(args: argparse.Namespace) -> int:
    with open_client(args, read_only=True) as mem:
        trail = mem.audit(args.memory_id)
    if args.json:
        print(json.dumps([e.to_json() for e in trail], ensure_ascii=False))
        return 0
    print("\n".join(audit_lines(trail)))
    return 0


def _cmd_history(args: argparse.Namespace) -> int:
    with open_client(args, read_only=True) as mem:
        _print_events(args, mem.history(args.memory_id))
    return 0


def _cmd_recall(args: argparse.Namespace) -> int:
    with open_client(args, embeds=True) as mem:
        filters = {"category": args.category} if args.category else None
        hits = mem.recall(args.query, args.ns, args.k, as_of=args.as_of, filters=filters)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False))
        return 0
    for rank, hit in enumerate(hits, 1):
        when = "" if hit.occurred_at is None else f"{hit.occurred_at:%Y-%m-%d} "
        print(f"{rank:>3}. {hit.score:7.3f}  {when}{hit.text}")
        if args.explain:
            print(explain_hit(hit))
    return 0


def _cmd_get(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        row = mem.get(args.memory_id)
    if row is None:
        raise MemoryNotFound(f"no memory {args.memory_id!r} in this log")
    emit(args, record_json(row), row_line(row))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        rows = mem.memories(args.ns, status=args.status, limit=args.limit, offset=args.offset)
    for row in rows:
        print(json.dumps(record_json(row), ensure_ascii=False) if args.json else row_line(row))
    return 0


def _cmd_contradictions(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        found = mem.contradictions(args.ns)
    if args.json:
        print(json.dumps([contradiction_json(c) for c in found], ensure_ascii=False))
        return 0
    for c in found:
        verdict = f"superseded: {c.superseded}" if c.superseded else "not decided"
        print(f"{c.memory.memory_id} {c.memory.text!r}")
        print(f"  contradicts {c.contradicts.memory_id} {c.contradicts.text!r} ({verdict})")
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    with open_local(args) as mem:
        report = mem.sync()
    emit(
        args,
        dataclasses.asdict(report),
        f"derived {report.derived} events; applied {report.applied} to the projections",
    )
    return 0


def _cmd_rebuild(args: argparse.Namespace) -> int:
    if args.into and not args.as_of:
        raise ValidationError("--into goes with --as-of")
    if args.as_of:
        with Memory.open(
            home=args.home,
            config_file=args.config,
            as_of=args.as_of,
            projections_dir=args.into or None,
        ) as mem:
            replayed = mem.runtime.project()
            stats = mem.stats()
            where = args.into or "a temporary directory (gone on exit)"
        line = f"rebuilt as of {args.as_of} into {where}: {replayed} events replayed"
        if args.into:
            line += f"\nread it as a home (read-only): mnemo recall QUERY --ns NS --home {where}"
    else:
        with open_local(args) as mem:
            replayed = mem.rebuild()
            stats = mem.stats()
        line = f"rebuilt from the log: {replayed} events replayed"
    emit(args, {"replayed": replayed, "stats": stats}, line)
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        stats = mem.stats()
    emit(args, stats, "\n".join(stats_lines(stats)))
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:

    from mnemoflow.pipeline.bench.evaluate import format_report, run_locomo

    try:
        ks = sorted({int(k) for k in args.k.split(",")})
    except ValueError as exc:
        raise ValidationError(f"--k takes numbers separated by commas: {args.k!r}") from exc
    if not ks or ks[0] < 1:
        raise ValidationError("--k takes positive numbers")
    settings = load_settings(config_file=args.config)
    # Only a --home given here is used (never $MNEMO_HOME or ~/.mnemo): kept, and reused by
    # the next run over the same file, whose stores are then acknowledged duplicates.
    home = Path(args.home) if args.home else None
    report = run_locomo(Path(args.file), ks, settings, home=home, feedback=args.feedback)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(format_report(report))
    return 0


# The service's commands keep its info lines; a one-shot command logs warnings and errors.
LONG_RUNNING = frozenset({"serve", "mcp"})
# Commands that may hand pyarrow pandas objects (Ray Data in ingest; the benchmarks')
WITH_PANDAS = LONG_RUNNING | {"ingest", "import", "bench", "eval"}


def _common(*, after_command: bool) -> argparse.ArgumentParser:
    """The options every command takes, before or after its name. After it, an option not
    given must not undo one given before (argparse's SUPPRESS: no default is set)."""
    common = argparse.ArgumentParser(add_help=False)
    unset: dict[str, Any] = {"default": argparse.SUPPRESS} if after_command else {}
    common.add_argument("--home", help="data directory (default: $MNEMO_HOME or ~/.mnemo)", **unset)
    common.add_argument("--config", help="a TOML file laid over configs/default.toml", **unset)
    common.add_argument("--json", action="store_true", help="machine-readable output", **unset)
    common.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log the pipeline's info lines on stderr (by default a one-shot command logs "
        "warnings and errors only; [logging] level sets it for good)",
        **unset,
    )
    return common


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnemo",
        description="Long-term memory for AI agents.",
        parents=[_common(after_command=False)],
    )
    parser.add_argument("--version", action="version", version=f"mnemo {mnemoflow.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common(after_command=True)

    def command(
        name: str, handler: Handler, help: str, aliases: Sequence[str] = ()
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help, aliases=aliases)
        p.set_defaults(handler=handler)
        return p

    _add_write_commands(command)
    _add_read_commands(command)
    add_episode_commands(command, common)
    return parser


def _event_id_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--id",
        help="your event id, to make a retry safe (idempotency key); the log keeps it keyed",
    )


def _add_write_commands(command: AddCommand) -> None:
    p = command("store", _cmd_store, "store a memory", aliases=["add"])
    p.add_argument("text", help="the memory's text; - reads standard input")
    p.add_argument("--ns", required=True, help="namespace, e.g. a user id")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="metadata (repeatable)")
    p.add_argument("--at", help="when it happened (ISO 8601); default: now")
    _event_id_option(p)

    p = command("update", _cmd_update, "give a memory new text")
    p.add_argument("memory_id")
    p.add_argument("text", help="the new text; - reads standard input")
    p.add_argument("--meta", action="append", metavar="KEY=VALUE", help="new metadata")
    p.add_argument("--at", help="when the change happened (ISO 8601)")
    _event_id_option(p)

    p = command("forget", _cmd_forget, "forget a memory (it stays in the log)")
    p.add_argument("memory_id")
    p.add_argument("--reason")
    _event_id_option(p)

    p = command("feedback", _cmd_feedback, "record whether a memory was useful")
    p.add_argument("memory_id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--useful", dest="useful", action="store_true")
    group.add_argument("--not-useful", dest="useful", action="store_false")
    p.add_argument("--note")
    _event_id_option(p)

    p = command("erase", _cmd_erase, "erase a namespace: destroy its key, so its content is gone")
    p.add_argument("--ns", required=True)


def _add_read_commands(command: AddCommand) -> None:
    p = command("verify", _cmd_verify, "recompute every stream's hash chain")
    p.add_argument(
        "--heads", action="store_true", help="print each stream's signed head, to keep elsewhere"
    )
    p.add_argument("--anchor", metavar="FILE", help="check the log against heads kept before")

    p = command("log", _cmd_log, "print events with their envelope and opened payload")
    p.add_argument("--ns", help="only this namespace")
    p.add_argument("--from", dest="start", type=int, default=1, help="first position")
    p.add_argument("--kind", help="only this kind, e.g. memory.stored")
    p.add_argument("--stream", default="input", help="which stream (default: input)")

    p = command("history", _cmd_history, "print one memory's events, oldest first")
    p.add_argument("memory_id")

    p = command("audit", _cmd_audit, "every event behind a memory, in every stream")
    p.add_argument("memory_id")

    p = command("recall", _cmd_recall, "the memories that best answer a query", aliases=["search"])
    p.add_argument("query")
    p.add_argument("--ns", required=True)
    p.add_argument("-k", type=int, default=10, help="how many (default 10)")
    p.add_argument("--explain", action="store_true", help="show channel scores and provenance")
    p.add_argument("--as-of", help="recall as of an input position or ISO 8601 time")
    p.add_argument("--category", help="only memories the extractor put in this category")

    p = command("get", _cmd_get, "print a memory as it stands now")
    p.add_argument("memory_id")

    p = command("list", _cmd_list, "list a namespace's memories, oldest first")
    p.add_argument("--ns", required=True)
    p.add_argument("--status", choices=["active", "forgotten", "erased"])
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)

    p = command("contradictions", _cmd_contradictions, "memories that contradict each other")
    p.add_argument("--ns", required=True)

    command("sync", _cmd_sync, "run the actors (embedding) and catch the projections up")
    command("stats", _cmd_stats, "events per stream, lag per actor and projection, disk use")

    p = command("rebuild", _cmd_rebuild, "drop the projections and replay the log")
    p.add_argument("--as-of", help="an input position or ISO 8601 time: build the past")
    p.add_argument("--into", help="with --as-of: the directory to build into (kept)")

    p = command(
        "eval",
        _cmd_eval,
        "measure recall on a benchmark (the shared protocol); in a temporary directory, or "
        "in --home, kept and reused by the next run over the same file",
    )
    p.add_argument("dataset", choices=["locomo"])
    p.add_argument("file", help="a LoCoMo JSON file")
    p.add_argument("--k", default="1,5,10,25", help="cut-offs, e.g. 1,5,10,25")
    p.add_argument(
        "--feedback",
        action="store_true",
        help="also measure learning from use: feedback on half of each conversation's "
        "questions, the other half scored before and after (not with --home)",
    )

    add_service_commands(command)
    add_transfer_commands(command)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(home=args.home, config_file=args.config).logging
        if args.verbose:
            settings = settings.model_copy(update={"level": "info"})
        configure_logging(settings, quiet=args.command not in LONG_RUNNING)
        if args.command not in WITH_PANDAS:
            arrow_without_pandas()
        code: int = args.handler(args)
    except MnemoError as exc:
        print(f"mnemo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("mnemo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader stopped reading (`mnemo export | head`): not an error
        # What is left to flush at exit goes nowhere, instead of failing once more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a tool killed by SIGPIPE
    except Exception as exc:  # a bug, but the user still gets one line, not a traceback
        print(f"mnemo: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 70
    finally:
        preloading = getattr(args, "preloading", None)
        if preloading is not None:  # never left inside ONNX Runtime as the interpreter ends
            preloading.join()
    return code
