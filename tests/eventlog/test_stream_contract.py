"""The stream contract, run against every implementation."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnemoflow.eventlog.memstream import InMemoryStream
from mnemoflow.eventlog.protocols import AppendableStream
from mnemoflow.eventlog.stream import ArrowStream
from tests.contracts.stream_contract import StreamContract


class TestArrowStream(StreamContract):
    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.directory = tmp_path / "input"

    def make_stream(self) -> AppendableStream:
        # Small segments, so every test also crosses seals and sidecar indexes.
        return ArrowStream(self.directory, segment_bytes=32768)


class TestArrowStreamReopened(StreamContract):
    """The same contract when every read goes through a freshly reopened stream."""

    @pytest.fixture(autouse=True)
    def _dir(self, tmp_path: Path) -> None:
        self.directory = tmp_path / "input"

    def make_stream(self) -> AppendableStream:
        return _Reopening(self.directory)


class TestInMemoryStream(StreamContract):
    def make_stream(self) -> AppendableStream:
        return InMemoryStream("input")


class _Reopening(ArrowStream):
    """Appends through this writer; every read goes through a new read-only stream on the
    same directory, so reads see only what reached the disk."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory, segment_bytes=32768)

    def _reader(self) -> ArrowStream:
        return ArrowStream(self._dir, writable=False)

    def read(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._reader().read(*args, **kwargs)

    def scan(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._reader().scan(*args, **kwargs)

    def last(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self._reader().last(*args, **kwargs)

    def get(self, event_id):  # type: ignore[no-untyped-def]
        return self._reader().get(event_id)

    def verify(self):  # type: ignore[no-untyped-def]
        return self._reader().verify()
