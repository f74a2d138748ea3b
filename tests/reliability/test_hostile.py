"""Hostile input against the real service (`mnemo serve`, real Ray): schemathesis over the
OpenAPI document, a hypothesis property over store bodies, and hostile query strings. No 5xx,
no crash, and nothing written by a refused call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnemoflow.pipeline.bench.suite import served

HOSTILE_QUERIES = [
    "'; DROP TABLE memories; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM postings WHERE ('1'='1",
    'cat AND dog OR NOT "bird" NEAR/3 fish*',
    "title:(a OR b) -c +d ~e ^2",
    ".*(a+)+$[\\d\\w]{1000}(?<=x)\\",
    "%_%\\%\\_",
    "\u202eevil\u202c reversed \u200f\u200e",
    "🦜🔥👩‍👩‍👧‍👦 emoji only 🇫🇷",
    "\ufeff\u200b zero width \u2060",
    "x" * 5000,
    "名前は何ですか 你的猫叫什么",
]
REFUSED_QUERIES = [
    "nul \x00 inside",
    "",
    "   ",
    "y" * (1 << 20),  # 1 MiB: over the body limit
]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("hostile") / "home"
    env = {"MNEMO_SERVER__RATE_PER_SECOND": "100000", "MNEMO_SERVER__BURST": "100000"}
    with served(home, env=env) as (address, _):
        for text in ("Alice moved to Paris.", "Bob likes figs and drops tables."):
            httpx.post(f"{address}/store", json={"text": text, "namespace": "alice"})
        yield address


def _position(url: str) -> int:
    return int(httpx.get(f"{url}/health").json()["input_position"])


def _is_json_error(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


@pytest.mark.parametrize("query", HOSTILE_QUERIES, ids=range(len(HOSTILE_QUERIES)))
def test_hostile_queries_are_answered(url: str, query: str) -> None:
    before = _position(url)
    for path, body in (
        ("/recall", {"query": query, "namespace": "alice", "k": 5}),
        ("/memories/search", {"user_id": "alice", "query": query, "limit": 5}),
    ):
        response = httpx.post(f"{url}{path}", json=body, timeout=60)
        assert response.status_code == 200, (path, response.text[:300])
    assert _position(url) == before


@pytest.mark.parametrize("query", REFUSED_QUERIES, ids=["nul", "empty", "blank", "1MiB"])
def test_impossible_queries_are_refused_cleanly(url: str, query: str) -> None:
    before = _position(url)
    response = httpx.post(f"{url}/recall", json={"query": query, "namespace": "alice"}, timeout=60)
    assert response.status_code in (400, 413, 422), response.text[:300]
    assert _is_json_error(response)
    assert _position(url) == before


def test_raw_hostile_bodies_are_refused_cleanly(url: str) -> None:
    """Bodies no JSON encoder would make: invalid UTF-8, a lone surrogate, truncated JSON,
    the wrong content type, a huge number, deep nesting."""
    before = _position(url)
    for raw in (
        b'{"text": "\xff\xfe bad utf-8", "namespace": "alice"}',
        b'{"text": "\\ud800 lone surrogate", "namespace": "alice"}',
        b'{"text": "cut off',
        b"text=hello&namespace=alice",
        b'{"text": "big", "namespace": "alice", "metadata": {"n": 1e999999}}',
        b'{"text": "deep", "namespace": "alice", "metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    ):
        response = httpx.post(
            f"{url}/store", content=raw, headers={"content-type": "application/json"}
        )
        assert 400 <= response.status_code < 500, (raw[:60], response.text[:300])
        assert _is_json_error(response)
    assert _position(url) == before


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.dictionaries(
        st.sampled_from(["text", "namespace", "metadata", "occurred_at", "event_id", "other"]),
        _JSON | st.text(min_size=1, max_size=40),
        max_size=6,
    )
)
def test_store_bodies_either_store_one_memory_or_nothing(url: str, body: dict[str, Any]) -> None:
    before = _position(url)
    response = httpx.post(f"{url}/store", json=body, timeout=60)
    assert response.status_code < 500, (body, response.text[:300])
    after = _position(url)
    if response.status_code == 200:
        assert response.json()["position"] <= after <= before + 1
    else:
        assert _is_json_error(response) and after == before


api = schemathesis.pytest.from_fixture("openapi")


@pytest.fixture(scope="module")
def openapi(url: str) -> Any:
    return schemathesis.openapi.from_url(f"{url}/openapi.json")


@api.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_from_the_openapi_document(case: Any, url: str) -> None:
    """Requests generated from the document itself, on every route: never a 5xx, errors are
    JSON, and a refused call writes nothing."""
    before = _position(url)
    response = case.call(base_url=url, timeout=60)
    assert response.status_code < 500, (case.method, case.path, response.text[:300])
    if response.status_code >= 400:
        (content_type,) = response.headers["content-type"]  # schemathesis: name -> values
        assert content_type.startswith("application/json")
        assert "error" in json.loads(response.text)
        assert _position(url) == before
