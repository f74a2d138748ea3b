"""Prometheus metrics over a real uvicorn server: parsed with prometheus_client's own parser,
histograms for request and recall latency, route templates as labels, the pipeline's gauges,
and one registry per app."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mnemoflow import Memory
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.httpserver import serving


def scrape(url: str) -> tuple[dict[str, str], list[Sample]]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = list(text_string_to_metric_families(response.text))
    return {f.name: f.type for f in families}, [s for f in families for s in f.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_requests_latency_and_pipeline_gauges(mem: Memory, home: Path) -> None:
    keys = KeyStore(home / "keys.json")
    with serving(create_app(mem, keys, open_access=True)) as url:
        ids = [
            httpx.post(f"{url}/store", json={"text": t, "namespace": "ana"}).json()["memory_id"]
            for t in ("Ana swims at dawn.", "Ana's cat is called Miso.")
        ]
        httpx.post(f"{url}/recall", json={"query": "cat", "namespace": "ana", "min_position": 2})
        httpx.post(f"{url}/memories/search", json={"query": "swim", "user_id": "ana"})
        for memory_id in ids:
            httpx.get(f"{url}/memories/{memory_id}")
        types, samples = scrape(url)

    assert types["mnemo_http_requests"] == "counter"
    assert types["mnemo_http_request_seconds"] == "histogram"  # a p95 can be computed
    assert types["mnemo_recall_seconds"] == "histogram"
    stores = value(samples, "mnemo_http_requests_total", route="/store", status="200")
    assert stores == 2
    # the route's template, never one series per memory id
    gets = value(samples, "mnemo_http_requests_total", route="/memories/{memory_id}")
    assert gets == 2
    assert not any(i in str(s.labels) for s in samples for i in ids)
    inf = value(samples, "mnemo_http_request_seconds_bucket", route="/recall", le="+Inf")
    assert inf == 1
    assert value(samples, "mnemo_recall_seconds_count") == 2  # /recall and mem0's search
    assert value(samples, "mnemo_stream_events", stream="input") == mem.log.input.last_position
    assert value(samples, "mnemo_memories", status="active") == 2
    actors = {s.labels["actor"] for s in samples if s.name == "mnemo_actor_lag"}
    assert actors == {f.name for f in mem.runtime.followers}
    assert value(samples, "mnemo_disk_bytes", component="log") > 0
    assert value(samples, "mnemo_projection_lag", projection="duckdb", stream="input") == 0


def test_two_apps_count_apart(mem: Memory, home: Path) -> None:
    keys = KeyStore(home / "keys.json")
    with (
        serving(create_app(mem, keys, open_access=True)) as busy,
        serving(create_app(mem, keys, open_access=True)) as idle,
    ):
        httpx.post(f"{busy}/store", json={"text": "Ana rows.", "namespace": "ana"})
        _, busy_samples = scrape(busy)
        _, idle_samples = scrape(idle)
    assert value(busy_samples, "mnemo_http_requests_total", route="/store") == 1
    assert not [s for s in idle_samples if s.labels.get("route") == "/store"]
