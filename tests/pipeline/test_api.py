"""The API contract, embedded and over HTTP (a real uvicorn server on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from mnemoflow import Memory
from mnemoflow.pipeline.api.apikeys import KeyStore
from mnemoflow.pipeline.http.app import create_app
from tests.pipeline.api_contract import MemoryApiContract
from tests.pipeline.httpserver import serving


class TestEmbedded(MemoryApiContract):
    @pytest.fixture
    def api(self, home: Path) -> Iterator[Any]:
        with Memory.open(home=home) as mem:
            yield mem

    def test_a_memory_is_indexed_on_its_writers_day(self, api: Memory) -> None:
        """23:30 on 5 January at UTC-5 is the 6th in UTC: the dated text the lexical channel
        indexes says the 5th."""
        late = datetime(2024, 1, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
        r = api.store("I went bouldering with Noor yesterday.", "fay", occurred_at=late)
        api.recall("bouldering", "fay", k=1, min_position=r.position)
        row = api.runtime.projector.duck.get(r.memory_id)
        assert row is not None and row.terms()[:3] == ["5", "january", "2024"]


class TestOverHttp(MemoryApiContract):
    @pytest.fixture
    def api(self, home: Path) -> Iterator[Any]:
        with Memory.open(home=home) as mem:
            keys = KeyStore(home / "keys.json")
            secret, _ = keys.create([], admin=True)
            with serving(create_app(mem, keys)) as url, Memory.connect(url, secret) as client:
                yield client
