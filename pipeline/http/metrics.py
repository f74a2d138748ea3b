"""Prometheus metrics of one HTTP app, through `prometheus_client`: requests and their latency
by route, recall latency (histograms, so a p95 can be scraped), and the pipeline read at each
scrape: events per stream, each actor's position, lag and throughput, projection lag, memory
counts, disk. Totals only: no namespace, no text, so any valid key may read them."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

Status = Callable[[], dict[str, Any]]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """One registry per app: two apps in a process (tests, a view beside the service) count
    apart, and nothing lands in the library's global registry."""

    def __init__(self, status: Status) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "mnemo_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "mnemo_http_request_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.recall_seconds = Histogram(
            "mnemo_recall_seconds",
            "Time to answer a recall (the /recall and mem0 search routes), waits included.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Pipeline(status))

    def install(self, app: FastAPI) -> None:
        """Count every request by the route it matched (its template, not its path: ids
        would make a series per memory)."""

        @app.middleware("http")
        async def count(request: Request, call_next: Callable[[Request], Awaitable[Any]]) -> Any:
            began = time.perf_counter()
            response = await call_next(request)
            route = getattr(request.scope.get("route"), "path", "other")
            self.requests.labels(route, request.method, str(response.status_code)).inc()
            self.request_seconds.labels(route).observe(time.perf_counter() - began)
            return response

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Pipeline(Collector):
    """Gauges read from the status at each scrape (the service's: its actors run in Ray)."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        stats = self.status()
        events = GaugeMetricFamily(
            "mnemo_stream_events", "Events in each stream of the log.", labels=["stream"]
        )
        for name, entry in stats["streams"].items():
            events.add_metric([name], entry["events"])
        yield events
        yield from _actors(stats["actors"])
        lag = GaugeMetricFamily(
            "mnemo_projection_lag",
            "Events of a stream not yet folded into a projection.",
            labels=["projection", "stream"],
        )
        for projection, entry in stats["projections"].items():
            for stream, n in entry["lag"].items():
                lag.add_metric([projection, stream], n)
        yield lag
        memories = GaugeMetricFamily(
            "mnemo_memories", "Memories in the projections, by status.", labels=["status"]
        )
        for status, n in stats["memories"]["by_status"].items():
            memories.add_metric([status], n)
        yield memories
        disk = GaugeMetricFamily(
            "mnemo_disk_bytes", "Bytes on disk, by component.", labels=["component"]
        )
        for component, n in stats["disk_bytes"].items():
            disk.add_metric([component], n)
        yield disk


def _actors(actors: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    processed = GaugeMetricFamily(
        "mnemo_actor_processed", "Upstream position each actor has processed.", labels=["actor"]
    )
    lag = GaugeMetricFamily(
        "mnemo_actor_lag", "Upstream events each actor has still to process.", labels=["actor"]
    )
    rate = GaugeMetricFamily(
        "mnemo_actor_events_per_second",
        "Events each actor processed a second while working (absent until it has worked).",
        labels=["actor"],
    )
    for name, entry in sorted(actors.items()):
        processed.add_metric([name], entry["processed"])
        lag.add_metric([name], entry["lag"])
        if entry.get("events_per_s") is not None:
            rate.add_metric([name], entry["events_per_s"])
    yield from (processed, lag, rate)
