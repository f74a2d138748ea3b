"""Isolation and access against the real service (`mnemo serve` with keys, real Ray):
a key scoped to one namespace gets 403 on another's data on every route, a revoked key 401
on every route; and erasure end to end through HTTP leaves the text nowhere."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mnemoflow.pipeline.bench.suite import served
from tests.pipeline.test_serve import mnemo, new_key

MARKER = "Zanzibar quokka 7731"  # a text looked for in every file after its erasure


Server = tuple[Path, str, dict[str, str]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("access") / "home"
    keys = {
        "admin": new_key(home, "--admin"),
        "alice": new_key(home, "--ns", "alice"),
        "revoked": new_key(home, "--ns", "bob"),
    }
    with served(home, open_access=False) as (url, _):
        yield home, url, keys


def _call(url: str, key: str, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method, f"{url}{path}", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60
    )


def test_every_route_checks_the_key_and_its_namespaces(server: Server) -> None:
    home, url, keys = server
    bob = _call(
        url, keys["admin"], "POST", "/store", {"text": "Bob likes figs.", "namespace": "bob"}
    )
    assert bob.status_code == 200, bob.text
    bob_id = bob.json()["memory_id"]
    started = _call(url, keys["admin"], "POST", "/episodes", {"task": "x", "namespace": "bob"})
    assert started.status_code == 200, started.text
    episode = started.json()["memory_id"]
    step = {"tool": "t", "action": "a"}
    # Every route, as a key for alice would use it against bob's data.
    against_bob: dict[tuple[str, str], tuple[str, Any]] = {
        ("POST", "/store"): ("/store", {"text": "x", "namespace": "bob"}),
        ("POST", "/store_many"): ("/store_many", {"items": [{"text": "x", "namespace": "bob"}]}),
        ("POST", "/update"): ("/update", {"memory_id": bob_id, "text": "Bob hates figs."}),
        ("POST", "/forget"): ("/forget", {"memory_id": bob_id}),
        ("POST", "/feedback"): ("/feedback", {"memory_id": bob_id, "useful": True}),
        ("POST", "/recall"): ("/recall", {"query": "figs", "namespace": "bob"}),
        ("GET", "/memories/{memory_id}"): (f"/memories/{bob_id}", None),
        ("GET", "/namespaces/{namespace}/memories"): ("/namespaces/bob/memories", None),
        ("GET", "/history/{memory_id}"): (f"/history/{bob_id}", None),
        ("GET", "/audit/{memory_id}"): (f"/audit/{bob_id}", None),
        ("POST", "/erase"): ("/erase", {"namespace": "bob"}),
        ("POST", "/memories/add"): ("/memories/add", {"user_id": "bob", "text": "x"}),
        ("POST", "/memories/search"): ("/memories/search", {"user_id": "bob", "query": "figs"}),
        ("GET", "/namespaces/{namespace}/contradictions"): ("/namespaces/bob/contradictions", None),
        ("GET", "/export"): ("/export?ns=bob", None),
        ("POST", "/episodes"): ("/episodes", {"task": "x", "namespace": "bob"}),
        ("POST", "/episodes/{episode_id}/steps"): (f"/episodes/{episode}/steps", step),
        ("POST", "/episodes/{episode_id}/steps/batch"): (
            f"/episodes/{episode}/steps/batch",
            {"steps": [step]},
        ),
        ("POST", "/episodes/{episode_id}/complete"): (
            f"/episodes/{episode}/complete",
            {"success": True},
        ),
        ("GET", "/episodes/{episode_id}"): (f"/episodes/{episode}", None),
        ("GET", "/namespaces/{namespace}/episodes"): ("/namespaces/bob/episodes", None),
        ("POST", "/context"): ("/context", {"task": "x", "namespace": "bob"}),
        ("GET", "/namespaces/{namespace}/patterns"): ("/namespaces/bob/patterns?task=x", None),
        ("GET", "/patterns/{pattern_id}"): (f"/patterns/{episode}:sequence", None),
        ("POST", "/guards"): ("/guards", {"text": "x", "namespace": "bob"}),
        ("GET", "/namespaces/{namespace}/guards"): ("/namespaces/bob/guards", None),
        ("POST", "/guards/remove"): ("/guards/remove", {"rule_id": "r", "namespace": "bob"}),
        ("POST", "/guard/check"): ("/guard/check", {"action": "x", "namespace": "bob"}),
        ("GET", "/verify"): ("/verify", None),  # admin routes
        ("GET", "/stats"): ("/stats", None),
        ("POST", "/import"): ("/import", {"rows": [{"op": "store"}]}),
        ("GET", "/rederive"): ("/rederive", None),
        ("POST", "/rederive"): ("/rederive", {"actor": "embedder", "model_id": "x"}),
    }
    any_key = {("GET", "/metrics"): ("/metrics", None)}  # totals only: any valid key
    spec = httpx.get(f"{url}/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    # A new route needs a row here.
    assert routes - {("GET", "/health")} == set(against_bob) | set(any_key)
    before = _call(url, keys["admin"], "GET", "/stats").json()["streams"]["input"]["events"]
    revoked_id = keys["revoked"][: len("mnemo_") + 8]
    assert mnemo(home, "keys", "revoke", revoked_id).returncode == 0
    for (method, _), (path, body) in against_bob.items():
        denied = _call(url, keys["alice"], method, path, body)
        assert denied.status_code == 403, (method, path, denied.text)
        assert "error" in denied.json()
        gone = _call(url, keys["revoked"], method, path, body)
        assert gone.status_code == 401, (method, path, gone.text)
    for (method, _), (path, body) in any_key.items():
        assert _call(url, keys["alice"], method, path, body).status_code == 200
        assert _call(url, keys["revoked"], method, path, body).status_code == 401
        assert httpx.request(method, f"{url}{path}").status_code == 401  # no key at all
    after = _call(url, keys["admin"], "GET", "/stats").json()["streams"]["input"]["events"]
    assert after == before  # nothing was written by any refused call
    row = _call(url, keys["admin"], "GET", f"/memories/{bob_id}").json()
    assert row["text"] == "Bob likes figs." and row["status"] == "active"
    assert httpx.get(f"{url}/health").status_code == 200  # liveness needs no key


def test_erasure_through_http_leaves_the_text_nowhere(server: Server, tmp_path: Path) -> None:
    home, url, keys = server
    admin = keys["admin"]
    victim = _call(
        url, admin, "POST", "/store", {"text": f"{MARKER} lives here.", "namespace": "eve"}
    )
    memory_id = victim.json()["memory_id"]
    _call(url, admin, "POST", "/update", {"memory_id": memory_id, "text": f"{MARKER} moved."})
    _call(url, admin, "POST", "/store", {"text": "Eve likes tea.", "namespace": "eve"})
    kept = _call(url, admin, "POST", "/store", {"text": "Carol keeps bees.", "namespace": "carol"})
    last = kept.json()["position"]
    seen = _call(
        url, admin, "POST", "/recall", {"query": MARKER, "namespace": "eve", "min_position": last}
    )
    assert any(MARKER in h["text"] for h in seen.json())  # it was there, in every projection

    erased = _call(url, admin, "POST", "/erase", {"namespace": "eve"})
    assert erased.status_code == 200, erased.text
    recall = _call(url, admin, "POST", "/recall", {"query": MARKER, "namespace": "eve"})
    assert recall.status_code in (200, 404) and MARKER not in recall.text
    audit = _call(url, admin, "GET", f"/audit/{memory_id}")
    assert MARKER not in audit.text
    carol = _call(
        url, admin, "POST", "/recall", {"query": "bees", "namespace": "carol", "min_position": last}
    )
    assert [h["text"] for h in carol.json()][:1] == ["Carol keeps bees."]  # others untouched
    assert _call(url, admin, "GET", "/verify").json()["ok"]

    past = tmp_path / "past"  # the state just before the erasure, rebuilt from the log
    rebuilt = mnemo(home, "rebuild", "--as-of", str(last), "--into", str(past), "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    needle = MARKER.encode()
    for root in (home, past):
        for path in root.rglob("*"):
            if path.is_file():
                assert needle not in path.read_bytes(), path
