"""`mnemo bench episodes`: logging what agents do, and the context a new task gets.

In a fresh home, through the Python API (embedded): single steps one after another in
episodes of ten steps (each durable when it returns) beside single stores of a memory, the
baseline, alternated; steps in batches of 100 (`step_many`, one batch an episode, the time to
start it included); then N episodes of a synthetic task suite (a start, three to six
steps, a completion), and `context` asked for new tasks of the suite's families.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.log import scratch
from mnemoflow.pipeline.bench.recall import percentiles

FAMILIES = {
    "deploy the {} service": [("git", "pull"), ("docker", "build"), ("kubectl", "apply")],
    "migrate the {} table": [("pg_dump", "backup"), ("psql", "alter table"), ("psql", "vacuum")],
    "book a trip to {}": [("search", "flights"), ("search", "hotels"), ("calendar", "block")],
    "fix the flaky {} test": [("pytest", "run"), ("editor", "patch"), ("pytest", "run")],
}
NAMES = ["billing", "search", "orders", "payments", "lisbon", "kyoto", "login", "signup"]


def _at(settings: Settings, home: Path) -> Settings:
    paths = settings.paths.model_copy(update={"home": str(home)})
    return settings.model_copy(update={"paths": paths})


def run_episodes_bench(
    settings: Settings, episodes: int = 10_000, home: str | None = None
) -> dict[str, Any]:
    rng = random.Random(5)  # noqa: S311  (a reproducible suite, not a secret)
    with scratch(home) as tmp, Memory.open(settings=_at(settings, Path(tmp) / "home")) as mem:
        step_s: list[float] = []
        store_s: list[float] = []
        for i in range(min(300, max(50, episodes))):  # alternated: the same disk and moment
            if i % 10 == 0:  # episodes of ten steps (a step reads its episode's events)
                eid = str(mem.episodes.start(f"task {i}", "bench").memory_id)
            began = time.perf_counter()
            mem.episodes.step(eid, "tool", f"action {i % 7}")
            step_s.append(time.perf_counter() - began)
            began = time.perf_counter()
            mem.store(f"note {i}", "bench")
            store_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        for i in range(100):  # a hundred episodes of a hundred steps, one batch each
            batched = str(mem.episodes.start(f"long task {i}", "bench").memory_id)
            mem.episodes.step_many(
                batched, [{"tool": "tool", "action": f"step {i}.{j}"} for j in range(100)]
            )
        batch_rate = 10_000 / (time.perf_counter() - began)
        began = time.perf_counter()
        for _ in range(episodes):
            task, recipe = rng.choice(list(FAMILIES.items()))
            run = str(mem.episodes.start(task.format(rng.choice(NAMES)), "suite").memory_id)
            steps = [{"tool": t, "action": a} for t, a in recipe]
            failed = rng.random() < 0.25
            if failed:
                steps.insert(
                    rng.randrange(len(steps)),
                    {"tool": "shell", "action": "retry", "error": "timeout"},
                )
            mem.episodes.step_many(run, steps)
            mem.episodes.complete(run, not failed)
        filled = time.perf_counter() - began
        mem.context("deploy the inventory service", "suite")  # the projections catch up
        asked: list[float] = []
        for i in range(60):
            task = list(FAMILIES)[i % len(FAMILIES)].format(f"new{i}")
            began = time.perf_counter()
            mem.context(task, "suite", k=5)
            asked.append(time.perf_counter() - began)
    single, store = percentiles(step_s), percentiles(store_s)
    return {
        "single_step": single,
        "single_store_baseline": store,
        "step_vs_store_p50": round(single["p50_ms"] / store["p50_ms"], 2),
        "steps_per_s_in_batches_of_100": round(batch_rate),
        "episodes": episodes,
        "episode_events_per_s": round(episodes * 3 / filled),
        "context": percentiles(asked),
    }


def format_episodes_bench(result: dict[str, Any]) -> str:
    single, store, context = (
        result["single_step"],
        result["single_store_baseline"],
        result["context"],
    )
    return "\n".join(
        [
            "episodes (embedded, each call durable when it returns)",
            f"  single step p50 / p99     {single['p50_ms']:.2f} / {single['p99_ms']:.2f} ms"
            f"   (a single store: {store['p50_ms']:.2f} / {store['p99_ms']:.2f} ms;"
            f" ratio {result['step_vs_store_p50']})",
            f"  steps in batches of 100   {result['steps_per_s_in_batches_of_100']:>10,} /s",
            f"  {result['episodes']:,} episodes logged    {result['episode_events_per_s']:>10,}"
            " calls/s (start, a batch of steps, complete)",
            f"  context p50 / p99         {context['p50_ms']:.1f} / {context['p99_ms']:.1f} ms"
            f" at {result['episodes']:,} episodes",
        ]
    )
