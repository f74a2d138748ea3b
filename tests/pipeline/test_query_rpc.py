"""The query endpoint other Ray jobs call (end to end, over Ray and HTTP, in test_serve)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnemoflow.pipeline.api.client import SERVER_FILE
from mnemoflow.pipeline.api.errors import PipelineError
from mnemoflow.pipeline.service.query_rpc import CLIENTS, QueryEndpoint


def test_without_a_server_the_endpoint_says_so(tmp_path: Path) -> None:
    endpoint = QueryEndpoint(tmp_path)
    with pytest.raises(PipelineError, match="no server is serving"):
        endpoint.recall("anything", "ns")
    (tmp_path / SERVER_FILE).write_text("{not json")
    with pytest.raises(PipelineError, match="no server is serving"):
        endpoint.ping()


def test_the_endpoint_follows_a_restarted_server(tmp_path: Path) -> None:
    """A new port in server.json: the next call goes there, not to the old one."""
    endpoint = QueryEndpoint(tmp_path)
    marker = tmp_path / SERVER_FILE
    marker.write_text(json.dumps({"url": "http://127.0.0.1:9", "token": "a"}))
    first = endpoint._remote("key-a")
    assert endpoint._remote("key-a") is first
    marker.write_text(json.dumps({"url": "http://127.0.0.1:10", "token": "b"}))
    assert endpoint._remote("key-a") is not first


def test_the_endpoint_forwards_the_callers_key_never_the_servers_token(tmp_path: Path) -> None:
    endpoint = QueryEndpoint(tmp_path)
    (tmp_path / SERVER_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9", "token": "T"}))
    for key in ("key-a", "key-b", None):
        sent = endpoint._remote(key)._http.headers.get("authorization")
        assert sent == (f"Bearer {key}" if key else None)
    assert endpoint._remote("key-a") is not endpoint._remote("key-b")
    for n in range(CLIENTS + 5):  # connections are bounded
        endpoint._remote(f"key-{n}")
    assert len(endpoint._clients) == CLIENTS
