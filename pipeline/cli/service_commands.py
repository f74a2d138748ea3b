"""The `mnemo` commands that run things: serve, mcp, keys, ingest, bench."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.pipeline.api.client import running_server
from mnemoflow.pipeline.api.config import Settings, load_settings
from mnemoflow.pipeline.cli.common import AddCommand, emit, open_local

if TYPE_CHECKING:
    from mnemoflow.pipeline.ingest.job import IngestReport


def _cmd_bench(args: argparse.Namespace) -> int:
    settings = load_settings(home=args.home, config_file=args.config)
    if args.target is None:
        return _bench_all(args, settings)
    key, run, show = _bench_targets()[args.target]
    result = run(args, settings)
    emit(args, {key: result}, show(result))
    return 0


Figures = dict[str, Any]
BenchTarget = tuple[
    str, Callable[[argparse.Namespace, Settings], Figures], Callable[[Figures], str]
]


def _bench_targets() -> dict[str, BenchTarget]:
    """Each `mnemo bench TARGET`: the key of its figures, how it runs, how it reads."""
    from mnemoflow.pipeline.bench import (
        cold,
        dashboard,
        episodes,
        log,
        projections,
        recall,
        rederive,
        service,
        suite,
        tasksuite,
        transfer,
    )

    return {
        "log": (
            "log",
            lambda a, s: log.run_log_bench(events=a.events, home=a.home),
            log.format_log_bench,
        ),
        "ingest": (
            "ingest",
            lambda a, s: suite.run_ingest_bench(s, a.ingest_memories, home=a.home),
            suite.format_ingest,
        ),
        "embedder": (
            "embedder",
            lambda a, s: projections.run_embedder_bench(s.embedder, a.sentences),
            projections.format_projection_bench,
        ),
        "rebuild": (
            "rebuild",
            lambda a, s: projections.run_rebuild_bench(s, a.memories, home=a.home),
            projections.format_projection_bench,
        ),
        "recall": (
            "recall",
            lambda a, s: recall.run_recall_bench(
                s, _sizes(a.sizes), a.queries, real_vectors=a.real_vectors, home=a.home
            ),
            recall.format_recall_bench,
        ),
        "lag": (
            "lag",
            lambda a, s: service.run_lag_bench(s, rate=a.rate, seconds=a.seconds, home=a.home),
            service.format_lag_bench,
        ),
        "transfer": (
            "transfer",
            lambda a, s: transfer.run_transfer_bench(a.memories, home=a.home),
            transfer.format_transfer_bench,
        ),
        "rederive": (
            "rederive",
            lambda a, s: rederive.run_rederive_bench(s, a.ingest_memories, home=a.home),
            rederive.format_rederive_bench,
        ),
        "episodes": (
            "episodes",
            lambda a, s: episodes.run_episodes_bench(s, a.episodes, home=a.home),
            episodes.format_episodes_bench,
        ),
        "patterns": (
            "patterns",
            lambda a, s: tasksuite.run_patterns_bench(
                s, _sizes(a.suite_sizes), burst=a.burst, home=a.home
            ),
            tasksuite.format_patterns_bench,
        ),
        "dashboard": (
            "dashboard",
            lambda a, s: dashboard.run_dashboard_bench(s, a.memories, rounds=a.rounds, home=a.home),
            dashboard.format_dashboard_bench,
        ),
        "cold": (
            "cold_recall",
            lambda a, s: cold.run_cold_bench(s, a.runs, home=a.home),
            cold.format_cold_bench,
        ),
    }


def _bench_all(args: argparse.Namespace, settings: Settings) -> int:
    from mnemoflow.pipeline.bench import suite
    from mnemoflow.pipeline.bench.extras import require

    require("psutil", suite.PEAK_MEMORY)  # said now, not after the run
    if args.plot:
        require("matplotlib", suite.PLOT)
    result = suite.run_bench(
        settings,
        _sizes(args.sizes),
        args.queries,
        ingest_memories=args.ingest_memories,
        log_events=args.events,
        real_vectors=args.real_vectors,
        home=args.home,
        config=args.config,
    )
    if args.plot:
        suite.plot(result, Path(args.plot))
    emit(args, result, suite.format_bench(result))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from mnemoflow.pipeline.http.serve import serve

    settings = load_settings(home=args.home, config_file=args.config)
    serve(
        settings,
        host=args.host,
        port=args.port,
        ray_address=args.ray_address,
        open_access=args.open,
    )
    return 0


def _cmd_mcp(args: argparse.Namespace) -> int:
    from mnemoflow.pipeline import mcp_server

    settings = load_settings(home=args.home, config_file=args.config)
    mcp_server.run(settings, url=args.url, api_key=args.api_key or os.environ.get("MNEMO_API_KEY"))
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    return run_ingest(args, [Path(p) for p in args.paths])


def run_ingest(args: argparse.Namespace, paths: list[Path]) -> int:
    """Ingest `paths` as `mnemo ingest` does (`mnemo import` of a file that is no export)."""
    from mnemoflow.pipeline.ingest.job import ingest

    sources = (paths, args.ns or "", args.format)
    shared = {"batch_size": args.batch_size, "progress": not args.json and sys.stderr.isatty()}
    remote = running_server(load_settings(home=args.home, config_file=args.config).home)
    if remote is not None:  # `mnemo serve` holds the log: the rows go through it
        from mnemoflow.pipeline.ingest.remote import ingest_through

        with remote:
            report = ingest_through(remote, *sources, **shared)
        emit(args, dataclasses.asdict(report), _ingested(report) + f" (through {remote.url})")
        return 0
    with open_local(args) as mem:
        report = ingest(
            mem,
            *sources,
            actors=args.actors,
            ray_address=args.ray_address,
            compare=None if args.compare else 0,
            **shared,
        )
    line = _ingested(report)
    if report.ratio is not None:
        line += f", {report.ratio:.0%} of the model's own {report.raw_embedder_memories_per_s}/s"
    emit(args, dataclasses.asdict(report), line)
    return 0


def _ingested(report: IngestReport) -> str:
    return (
        f"ingested {report.rows} rows ({report.stored} new memories) in {report.seconds} s: "
        f"{report.memories_per_s}/s end to end"
    )


def _cmd_keys(args: argparse.Namespace) -> int:
    from mnemoflow.pipeline.api.apikeys import KeyStore

    settings = load_settings(home=args.home, config_file=args.config)
    settings.home.mkdir(parents=True, exist_ok=True)
    keys = KeyStore(settings.home / "keys.json")
    if args.action == "create":
        secret, key = keys.create(args.ns or [], admin=args.admin)
        scope = "every namespace (admin)" if key.admin else ", ".join(key.namespaces)
        emit(
            args,
            {"key": secret, "id": key.id, "namespaces": list(key.namespaces), "admin": key.admin},
            f"{secret}\n(key {key.id}, for {scope}; shown once, only its hash is kept)",
        )
    elif args.action == "revoke":
        if not args.key_id:
            raise ValidationError("mnemo keys revoke KEY_ID")
        key = keys.revoke(args.key_id)
        emit(args, {"id": key.id, "revoked": True}, f"revoked {key.id}")
    else:
        listed = keys.list()
        for key in listed:
            doc = {
                "id": key.id,
                "namespaces": list(key.namespaces),
                "admin": key.admin,
                "created_at": key.created_at,
                "revoked": key.revoked,
            }
            scope = "admin" if key.admin else ",".join(key.namespaces)
            state = " (revoked)" if key.revoked else ""
            line = f"{key.id}  {scope}  {key.created_at}{state}"
            print(json.dumps(doc) if args.json else line)
    return 0


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or any(n < 20 for n in sizes):
        raise ValidationError(
            f"--sizes takes whole numbers of at least 20, e.g. 10000,100000: {text!r}"
        )
    return sizes


def add_service_commands(command: AddCommand) -> None:
    p = command("serve", _cmd_serve, "run the service: Ray actors, pumps and the HTTP API")
    p.add_argument("--host", help="listen address (default [server] host: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default [server] port: 8765; 0: any)")
    p.add_argument("--ray-address", help="join this Ray cluster (default: RAY_ADDRESS or local)")
    p.add_argument("--open", action="store_true", help="no API keys (loopback only)")

    p = command("ingest", _cmd_ingest, "store many memories from files, end to end")
    p.add_argument("paths", nargs="+", help="files to read")
    p.add_argument("--ns", help="the namespace (LoCoMo: a prefix; each conversation its own)")
    p.add_argument("--format", choices=["jsonl", "csv", "parquet", "locomo", "chatgpt"])
    p.add_argument("--batch-size", type=int, default=2000, help="memories per durable append")
    p.add_argument(
        "--actors",
        type=int,
        help="embedders in a Ray Data actor pool; 0: in this process (default: a pool sized "
        "to the cluster when joining one, else this process)",
    )
    p.add_argument("--ray-address", help="the Ray cluster to embed on (default: RAY_ADDRESS)")
    p.add_argument(
        "--compare",
        action="store_true",
        help="also measure the model alone on the same texts first (twice the embedding "
        "time), and the ratio",
    )

    p = command("mcp", _cmd_mcp, "serve the memory as MCP tools over stdio")
    p.add_argument("--url", help="use this service (default: the running server, or in-process)")
    p.add_argument("--api-key", help="the service's key (default: $MNEMO_API_KEY)")

    p = command("keys", _cmd_keys, "create, list or revoke API keys")
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("key_id", nargs="?", help="revoke: the key's id (from `mnemo keys list`)")
    p.add_argument("--ns", action="append", help="create: a namespace the key may touch")
    p.add_argument("--admin", action="store_true", help="create: every namespace, verify, stats")

    p = command("bench", _cmd_bench, "measure what the system does on this machine")
    p.add_argument(
        "target",
        nargs="?",
        choices=[
            "log",
            "ingest",
            "embedder",
            "rebuild",
            "recall",
            "lag",
            "transfer",
            "rederive",
            "episodes",
            "patterns",
            "dashboard",
            "cold",
        ],
        help="one measurement only (default: log, ingest, recall over the Python API and "
        "HTTP, rebuild and footprint, at each --sizes, and a cold one-shot recall)",
    )
    p.add_argument("--ingest-memories", type=int, default=2000, help="ingest, rederive: memories")
    p.add_argument("--plot", help="all: write a PNG of recall latency against size here")
    p.add_argument("--episodes", type=int, default=10_000, help="episodes: the suite's size")
    p.add_argument(
        "--suite-sizes", default="20,50,100,250,500", help="patterns: episodes at each score"
    )
    p.add_argument("--burst", type=int, default=1000, help="patterns: episodes in the burst")
    p.add_argument("--events", type=int, default=20_000, help="log: events per measurement")
    p.add_argument("--sentences", type=int, default=1000, help="embedder: sentences")
    p.add_argument(
        "--memories", type=int, default=100_000, help="rebuild, transfer, dashboard: memories"
    )
    p.add_argument("--rounds", type=int, default=20, help="dashboard: times each page is read")
    p.add_argument("--sizes", default="10000,100000", help="recall: memories per run")
    p.add_argument("--queries", type=int, default=200, help="recall: queries per size")
    p.add_argument("--rate", type=float, default=50.0, help="lag: stores per second")
    p.add_argument("--seconds", type=float, default=20.0, help="lag: how long to ingest")
    p.add_argument("--runs", type=int, default=7, help="cold: processes started, each kind")
    p.add_argument(
        "--real-vectors",
        action="store_true",
        help="recall: embed the corpus with the model (slow) instead of random vectors",
    )
