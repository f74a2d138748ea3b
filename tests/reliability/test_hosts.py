"""DNS rebinding: a server started `--open` answers only to loopback names, so a web page that
points its own name at 127.0.0.1 can neither read nor erase; no response invites another
origin's scripts (no permissive CORS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mnemoflow import Memory
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.api.server_settings import ServerSettings
from mnemoflow.pipeline.http.app import create_app
from mnemoflow.pipeline.http.hostguard import host_name
from tests.pipeline.httpserver import serving


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Memory, str]]:
    home = tmp_path_factory.mktemp("hosts")
    with (
        Memory.open(home=home / "home") as mem,
        serving(create_app(mem, KeyStore(home / "keys.json"), open_access=True)) as url,
    ):
        yield mem, url


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "10.0.0.7", "[fe80::1]"])
def test_an_open_server_refuses_a_host_that_is_not_loopback(
    open_server: tuple[Memory, str], host: str
) -> None:
    mem, url = open_server
    before = mem.log.input.last_position
    for method, path, body in (
        ("POST", "/store", {"text": "rebound", "namespace": "alice"}),
        ("POST", "/erase", {"namespace": "alice"}),
        ("GET", "/namespaces/alice/memories", None),
        ("GET", "/openapi.json", None),
    ):
        refused = httpx.request(method, f"{url}{path}", json=body, headers={"Host": host})
        assert refused.status_code == 400, (host, path, refused.text)
        assert refused.json()["error"] == "UntrustedHost"
    assert mem.log.input.last_position == before


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST.", "[::1]:1", "127.1.2.3"])
def test_an_open_server_answers_to_loopback_names(
    open_server: tuple[Memory, str], host: str
) -> None:
    _, url = open_server
    port = url.rsplit(":", 1)[1]
    named = host if host.endswith("]:1") else f"{host}:{port}"
    response = httpx.get(f"{url}/health", headers={"Host": named})
    assert response.status_code == 200, response.text


def test_no_response_grants_another_origin(open_server: tuple[Memory, str]) -> None:
    _, url = open_server
    origin = {"Origin": "http://evil.example"}
    simple = httpx.post(f"{url}/recall", json={"query": "x", "namespace": "a"}, headers=origin)
    preflight = httpx.options(
        f"{url}/erase",
        headers=origin | {"Access-Control-Request-Method": "POST"},
    )
    for response in (simple, preflight):
        assert not any(h.lower().startswith("access-control-") for h in response.headers)
    assert preflight.status_code >= 400


def test_a_configured_list_is_kept_when_keys_are_required(tmp_path: Path) -> None:
    settings = ServerSettings(allowed_hosts=["memory.internal"])
    with (
        Memory.open(home=tmp_path / "home") as mem,
        serving(create_app(mem, KeyStore(tmp_path / "keys.json"), settings)) as url,
    ):
        assert httpx.get(f"{url}/health", headers={"Host": "memory.internal:80"}).is_success
        assert httpx.get(f"{url}/health").is_success  # loopback stays allowed
        assert httpx.get(f"{url}/health", headers={"Host": "evil.example"}).status_code == 400


def test_host_names_are_parsed_like_a_browser_sends_them() -> None:
    assert host_name("LocalHost:8765") == "localhost"
    assert host_name("[::1]:8765") == "::1"
    assert host_name("[::1]") == "::1"
    assert host_name("example.com.") == "example.com"
    assert host_name("") is None
    assert host_name("[::1") is None
    assert host_name("a b") is None
