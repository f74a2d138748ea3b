"""`mnemo bench dashboard`: how fast the dashboard's pages come back from `mnemo serve` over a
large namespace.

A home is filled with N memories of the synthetic corpus in one namespace (the recall
benchmark's, with its word stand-in vectors), then served by `mnemo serve --open` as a child
process; each page is fetched over HTTP, alternating between pages, and timed from the request
to the last byte of the HTML (what the browser then draws is not in it): the namespaces, the
first page of memories and one half-way through, a search, a memory's page and its graph.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.corpus import queries
from mnemoflow.pipeline.bench.log import scratch
from mnemoflow.pipeline.bench.recall import NAMESPACE, build, percentiles
from mnemoflow.pipeline.bench.suite import served


def run_dashboard_bench(
    settings: Settings, memories: int = 100_000, rounds: int = 20, home: str | None = None
) -> dict[str, Any]:
    with scratch(home) as tmp:
        local = settings.model_copy(
            update={"paths": settings.paths.model_copy(update={"home": tmp})}
        )
        with Memory.open(settings=local) as mem:
            build_s = build(mem, memories, real_vectors=False)
            some = mem.memories(NAMESPACE, limit=1, offset=memories // 2)[0].memory_id
        pages = {
            "namespaces": "/ui",
            "memories, first page": f"/ui/ns/{NAMESPACE}",
            "memories, half-way": f"/ui/ns/{NAMESPACE}?offset={memories // 2}",
            "search": None,  # a new question each time
            "a memory": f"/ui/memory/{some}",
            "its graph": f"/ui/memory/{some}/graph",
        }
        asked = queries(rounds)
        times: dict[str, list[float]] = {name: [] for name in pages}
        with served(Path(tmp)) as (url, _), httpx.Client(base_url=url, timeout=120) as http:
            for path in pages.values():  # warm: the first read of each kind of page
                http.get(path or f"/ui/ns/{NAMESPACE}?q=warm").raise_for_status()
            for i in range(rounds):
                for name, path in pages.items():
                    target = path or f"/ui/ns/{NAMESPACE}?q={asked[i]}"
                    began = time.perf_counter()
                    http.get(target).raise_for_status()
                    times[name].append(time.perf_counter() - began)
    return {
        "memories": memories,
        "build_s": round(build_s, 1),
        "pages": {name: percentiles(t) for name, t in times.items()},
    }


def format_dashboard_bench(result: dict[str, Any]) -> str:
    lines = [
        f"dashboard (mnemo serve --open, one namespace of {result['memories']:,} memories; "
        "request to the last byte of the page)"
    ]
    for name, p in result["pages"].items():
        lines.append(f"  {name:<22} p50 {p['p50_ms']:7.1f} ms   p95 {p['p95_ms']:7.1f} ms")
    return "\n".join(lines)
