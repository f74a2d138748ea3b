"""The API contract, embedded and over HTTP (a real uvicorn server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mnemoflow import Memory
from mnemoflow.pipeline.http.apikeys import KeyStore
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.api_contract import MemoryApiContract
from tests.pipeline.httpserver import serving


class TestEmbedded(MemoryApiContract):
    @pytest.fixture
    def api(self, home: Path) -> Iterator[Any]:
        with Memory.open(home=home) as mem:
            yield mem


class TestOverHttp(MemoryApiContract):
    @pytest.fixture
    def api(self, home: Path) -> Iterator[Any]:
        with Memory.open(home=home) as mem:
            keys = KeyStore(home / "keys.json")
            secret, _ = keys.create([], admin=True)
            with serving(create_app(mem, keys)) as url, Memory.connect(url, secret) as client:
                yield client
