"""`mnemo bench`: what the system does on this machine, in one run.

- log: durable appends (`bench.run_log_bench`).
- ingest: a synthetic corpus written as a JSONL file and run through `mnemo ingest`'s code
  (every actor, projections caught up), and the model alone on the same texts, timed first in
  the same process: the ratio of the two.
- recall, for each size: a fresh home gets N memories of the synthetic agent corpus in one
  namespace, every actor run (`bench_recall.build`); warm recall through the Python API and
  a brute-force dense baseline (`bench_recall.measure`); then `mnemo serve` is started over the
  home as a child process and the same questions go over HTTP (a keep-alive client, as an
  agent's would be).
- footprint, for each size: the peak resident memory of that child's whole process tree
  while it starts, serves the questions, then takes one store and derives it (the server,
  Ray's own processes and every actor, each with the state it restores on its first work:
  RSS summed, and PSS, which counts shared pages once), and the home's bytes on disk per
  memory. The peak before the store (recall only) is given too.
- rebuild, for each size: the projections dropped and replayed from that home's log (every
  stream: input, extracted, embedded, linked, consolidated, decay); then, on the rebuilt
  home, recall right after a store (`bench_recall.after_store`: an agent's store-then-recall
  loop, the store and its derivation not timed).

The largest size's figures are also given at the top of `footprint` and `rebuild`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnemoflow.pipeline.api.client import RemoteMemory
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.cold import format_cold_bench, run_cold_bench
from mnemoflow.pipeline.bench.corpus import corpus, queries
from mnemoflow.pipeline.bench.extras import require
from mnemoflow.pipeline.bench.log import run_log_bench, scratch
from mnemoflow.pipeline.bench.recall import NAMESPACE, after_store, build, measure, percentiles
from mnemoflow.projections.projector import disk_bytes

if TYPE_CHECKING:
    import psutil

PEAK_MEMORY = "mnemo bench (the service's peak memory)"
PLOT = "mnemo bench --plot"


def _at(settings: Settings, home: str) -> Settings:
    return settings.model_copy(update={"paths": settings.paths.model_copy(update={"home": home})})


def run_ingest_bench(
    settings: Settings, memories: int = 2000, home: str | None = None
) -> dict[str, Any]:
    """The measured ingest comes after a first, smaller one into another home in the same
    process, which pays what a process pays once (imports, the model's first runs: ~2 s,
    a quarter of the measured run at 2,000) and is reported apart, as a user's second file
    would find the process."""
    from mnemoflow.pipeline.ingest.job import ingest

    with scratch(home) as tmp:
        reports = []
        for name, n in (("warm-up", max(1, memories // 10)), ("measured", memories)):
            source = Path(tmp) / f"{name}.jsonl"
            with source.open("w") as f:
                for item in corpus(n):
                    row = {"text": item.text, "occurred_at": item.occurred_at.isoformat()}
                    f.write(json.dumps(row) + "\n")
            with Memory.open(settings=_at(settings, str(Path(tmp) / name))) as mem:
                reports.append(
                    ingest(mem, [source], NAMESPACE, "jsonl", progress=False, compare=None)
                )
    warm_up, report = reports
    return {
        "memories": report.stored,
        "seconds": report.seconds,
        "memories_per_s": report.memories_per_s,
        "raw_embedder_memories_per_s": report.raw_embedder_memories_per_s,
        "ratio": report.ratio,
        "warm_up": {"memories": warm_up.stored, "seconds": warm_up.seconds},
    }


class _PeakMemory:
    """Samples a process tree's resident memory on a thread; keeps the peak."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self._psutil = require("psutil", PEAK_MEMORY)
        self._root = self._psutil.Process(pid)
        self._every = every
        self._stop = threading.Event()
        self.rss = self.pss = self.processes = 0
        self._thread = threading.Thread(target=self._run, name="mnemo-bench-rss", daemon=True)
        self._thread.start()

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._root, *self._root.children(recursive=True)]
        except self._psutil.Error:
            return []

    def sample(self) -> None:
        rss = pss = 0
        tree = self._tree()
        for process in tree:
            try:
                info = process.memory_full_info()
            except self._psutil.Error:
                continue  # it ended between listing and reading
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
        if rss > self.rss:
            self.rss, self.processes = rss, len(tree)
        self.pss = max(self.pss, pss)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


@contextmanager
def served(
    home: Path,
    config: str | None = None,
    env: dict[str, str] | None = None,
    *,
    open_access: bool = True,
) -> Iterator[tuple[str, int]]:
    """`mnemo serve` over `home` as a child process, on loopback, without keys unless
    `open_access` is False (`env` added to this process's environment): its URL and pid.
    Stopped with SIGTERM at the end of the block."""
    command = [sys.executable, "-m", "mnemoflow.pipeline.cli", "serve", "--home", str(home)]
    command += ["--port", "0"] + (["--open"] if open_access else [])
    command += ["--config", config] if config else []
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its Ray processes go with it
        env=None if env is None else os.environ | env,
    )
    assert child.stdout is not None
    try:
        line = child.stdout.readline()
        if not line.startswith("mnemo serving"):
            raise RuntimeError(f"mnemo serve did not start over {home}: {line!r}")
        yield line.split(" on ")[1].strip(), child.pid
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(120)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        child.stdout.close()


def _over_http(
    home: Path, questions: Sequence[str], config: str | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Recall latency through `mnemo serve`, and the peak memory of its process tree."""
    started = time.perf_counter()
    with served(home, config) as (url, pid):
        peak = _PeakMemory(pid)
        try:
            with RemoteMemory(url) as remote:
                for q in questions[:20]:  # warm: the server's caches and model session
                    remote.recall(q, NAMESPACE, 10)
                latencies = []
                for q in questions:
                    began = time.perf_counter()
                    remote.recall(q, NAMESPACE, 10)
                    latencies.append(time.perf_counter() - began)
                peak.sample()
                recall_only = peak.rss
                # One store: every actor then works, and first restores what it keeps (the
                # linker its vectors, the decay actor its schedules), which a service that
                # takes writes holds too.
                remote.store("Zed moved to Lisbon in May and loves grilled sardines.", NAMESPACE)
                derived_s = _until_caught_up(remote)
        finally:
            peak.stop()
    memory = {
        "rss_bytes": peak.rss,
        "pss_bytes": peak.pss,
        "rss_recall_only_bytes": recall_only,
        "processes": peak.processes,
        "store_derived_s": derived_s,
        "serve_s": round(time.perf_counter() - started, 1),
    }
    return percentiles(latencies), memory


def _until_caught_up(remote: RemoteMemory, timeout: float = 600.0) -> float:
    """Seconds until every actor and projection of the service has no lag."""
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        stats = remote.stats()
        lags = [a["lag"] for a in stats["actors"].values()]
        lags += [lag for p in stats["projections"].values() for lag in p["lag"].values()]
        if not any(lags):
            return round(time.perf_counter() - began, 1)
        time.sleep(0.2)
    raise RuntimeError(f"the service did not catch up within {timeout} s")


def _disk(home: Path) -> dict[str, int]:
    """Bytes under the home: the log by stream, the projections, and the total."""
    parts = {
        f"log.{stream.name}": disk_bytes(stream)
        for stream in sorted((home / "log" / "streams").iterdir())
        if stream.is_dir()
    }
    parts["projections"] = disk_bytes(home / "projections")
    parts["total"] = disk_bytes(home)
    return parts


def run_bench(
    settings: Settings,
    sizes: Sequence[int] = (10_000, 100_000),
    n_queries: int = 200,
    *,
    ingest_memories: int = 2000,
    log_events: int = 20_000,
    real_vectors: bool = False,
    home: str | None = None,
    config: str | None = None,
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "log": run_log_bench(log_events, home),
        "ingest": run_ingest_bench(settings, ingest_memories, home),
    }
    questions = queries(n_queries)
    recall: dict[str, Any] = {"k": 10, "queries": n_queries, "real_vectors": real_vectors}
    rebuild: dict[str, Any] = {}
    footprint: dict[str, Any] = {}
    for n in sizes:
        with scratch(home) as tmp:
            local = _at(settings, tmp)
            with Memory.open(settings=local) as mem:
                build_s = build(mem, n, real_vectors=real_vectors)
                measured = measure(mem, questions)
                measured["build_s"] = round(build_s, 1)
            disk = _disk(Path(tmp))  # closed: snapshots written
            http, memory = _over_http(Path(tmp), questions, config)
            measured["http"] = http
            recall[str(n)] = measured
            footprint[str(n)] = memory | {
                "disk_bytes_per_memory": round(disk["total"] / n),
                "disk_bytes_per_memory_by_part": {
                    k: round(v / n) for k, v in disk.items() if k != "total"
                },
            }
            with Memory.open(settings=local) as mem:
                began = time.perf_counter()
                replayed = mem.rebuild()
                seconds = time.perf_counter() - began
                for q in questions[:20]:  # warm again: the rebuild dropped the read models
                    mem.recall(q, NAMESPACE, 10)
                measured["after_store"] = after_store(mem, questions)
            rebuild[str(n)] = {
                "memories": n,
                "events_replayed": replayed,
                "seconds": round(seconds, 2),
                "memories_per_s": round(n / seconds),
                "events_per_s": round(replayed / seconds),
            }
    largest = str(max(sizes))
    result["recall"] = recall
    result["cold_recall"] = run_cold_bench(settings, home=home)
    result["rebuild"] = rebuild[largest] | {"by_size": rebuild}
    result["footprint"] = {
        "rss_bytes": footprint[largest]["rss_bytes"],
        "disk_bytes_per_memory": footprint[largest]["disk_bytes_per_memory"],
        "at_memories": int(largest),
        "by_size": footprint,
    }
    return result


def format_ingest(ingest: dict[str, Any]) -> str:
    return (
        "ingest (synthetic corpus, every actor, projections caught up)\n"
        f"  {ingest['memories']:,} memories in {ingest['seconds']} s: "
        f"{ingest['memories_per_s']}/s end to end; the model alone on the same texts "
        f"{ingest['raw_embedder_memories_per_s']}/s (ratio {ingest['ratio']}); after a "
        f"first ingest of {ingest['warm_up']['memories']:,} in {ingest['warm_up']['seconds']} s"
    )


def format_bench(result: dict[str, Any]) -> str:
    from mnemoflow.pipeline.bench.log import format_log_bench

    lines = [
        format_log_bench(result["log"]),
        format_ingest(result["ingest"]),
        f"recall (k={result['recall']['k']}, {result['recall']['queries']} queries, one namespace, "
        f"every channel, the query embedded each time)",
    ]
    for size, r in result["recall"].items():
        if not size.isdigit():
            continue
        api, http, base = r["python_api"], r["http"], r["brute_force_dense"]
        lines.append(
            f"  {int(size):>9,} memories  Python API p50/p95/p99 {api['p50_ms']}/"
            f"{api['p95_ms']}/{api['p99_ms']} ms   HTTP {http['p50_ms']}/{http['p95_ms']}/"
            f"{http['p99_ms']} ms   brute-force dense p50 {base['p50_ms']} ms "
            f"(x{r['ratio_p50']}; index recall@10 {r['semantic_index_recall_at_10']})   "
            f"right after a store p50/p95 "
            f"{r['after_store']['p50_ms']}/{r['after_store']['p95_ms']} ms"
        )
    lines.append(format_cold_bench(result["cold_recall"]))
    lines.append("rebuild (projections replayed from every stream)")
    for size, r in result["rebuild"]["by_size"].items():
        lines.append(
            f"  {int(size):>9,} memories  {r['memories_per_s']:,} memories/s "
            f"({r['events_per_s']:,} events/s, {r['seconds']} s)"
        )
    lines.append("footprint (mnemo serve: server, Ray and every actor)")
    for size, f in result["footprint"]["by_size"].items():
        parts = ", ".join(f"{k} {v:,}" for k, v in f["disk_bytes_per_memory_by_part"].items())
        lines.append(
            f"  {int(size):>9,} memories  peak RSS {f['rss_bytes'] / 2**20:,.0f} MiB "
            f"(PSS {f['pss_bytes'] / 2**20:,.0f} MiB, {f['processes']} processes; "
            f"recall only {f['rss_recall_only_bytes'] / 2**20:,.0f} MiB)   "
            f"disk {f['disk_bytes_per_memory']:,} B/memory ({parts})"
        )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """A PNG of recall latency (p50, p95; Python API, HTTP, brute force) against size."""
    matplotlib = require("matplotlib", PLOT)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(s) for s in result["recall"] if s.isdigit())
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for key, label in (
        ("python_api", "Python API"),
        ("http", "HTTP"),
        ("brute_force_dense", "brute-force dense"),
    ):
        for stat, style in (("p50_ms", "-o"), ("p95_ms", ":x")):
            values = [result["recall"][str(n)][key][stat] for n in sizes]
            axes.plot(sizes, values, style, label=f"{label} {stat[:3]}")
    axes.set_xscale("log")
    axes.set_xlabel("memories in the namespace")
    axes.set_ylabel("recall latency (ms), k = 10")
    axes.set_title("mnemoflow warm recall latency")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
