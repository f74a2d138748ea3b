"""A cold one-shot `mnemo recall`, as a user at a terminal meets it: a fresh process on a
small home (no server), wall time and peak resident memory, the median of several runs.
Beside it, alternating with it, two baselines of the same run: the interpreter alone, and a
process that only imports the CLI (what every command pays before it starts)."""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.log import scratch

MEMORIES = [
    "Ana swims at dawn before work.",
    "Ana's cat is called Miso.",
    "Ana moved to Lisbon in March.",
    "Ana is allergic to peanuts.",
    "Ana plays the cello on Sundays.",
] * 4


def run_cold_bench(settings: Settings, runs: int = 7, home: str | None = None) -> dict[str, Any]:
    with scratch(home) as tmp:
        local = settings.model_copy(
            update={"paths": settings.paths.model_copy(update={"home": tmp})}
        )
        with Memory.open(settings=local) as mem:
            for text in MEMORIES:
                mem.store(text, "ana")
            mem.sync()
        commands = {
            "recall": [
                *("-m", "mnemoflow.pipeline.cli", "recall", "what is the cat called?"),
                *("--ns", "ana", "--home", tmp),
            ],
            "import_cli": ["-c", "import mnemoflow.pipeline.cli.main"],
            "interpreter": ["-c", "pass"],
        }
        samples: dict[str, list[tuple[float, int]]] = {name: [] for name in commands}
        for _ in range(runs):  # alternating, so a noisy moment touches every figure alike
            for name, command in commands.items():
                samples[name].append(_run([sys.executable, *command]))
    out: dict[str, Any] = {"runs": runs, "memories": len(MEMORIES)}
    for name, values in samples.items():
        out[name] = {
            "median_s": round(statistics.median(s for s, _ in values), 3),
            "peak_rss_bytes": int(statistics.median(r for _, r in values)),
        }
    out["recall_over_import"] = round(out["recall"]["median_s"] / out["import_cli"]["median_s"], 2)
    return out


# Runs a command and reports its wall seconds, peak RSS (KiB) and exit code. The command is
# started from this small process, never from the benchmark's: a child counts the pages of
# the process it was forked or spawned from until it execs, and wait4 reports that peak.
LAUNCHER = """
import os, sys, time
began = time.perf_counter()
out = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ, file_actions=out)
_, status, usage = os.wait4(pid, 0)
print(time.perf_counter() - began, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def _run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS of one run of `command`."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *command], capture_output=True, text=True, check=True
    )
    seconds, kib, code = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"{command[1:4]} failed ({code}): {done.stderr[-500:]}")
    return float(seconds), int(kib) * 1024


def format_cold_bench(result: dict[str, Any]) -> str:
    r, i, p = result["recall"], result["import_cli"], result["interpreter"]
    return (
        f"cold one-shot recall ({result['memories']} memories, median of {result['runs']})\n"
        f"  mnemo recall {r['median_s']} s, peak RSS {r['peak_rss_bytes'] / 2**20:,.0f} MiB;"
        f" importing the CLI only {i['median_s']} s ({i['peak_rss_bytes'] / 2**20:,.0f} MiB;"
        f" x{result['recall_over_import']}); the interpreter alone {p['median_s']} s"
    )
