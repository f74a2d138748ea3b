"""Shared fixtures. Each test gets its own data directory; nothing touches ~/.mnemo."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog, InputLog, LogSettings
from mnemoflow.pipeline.api.config import LoggingSettings, load_settings
from mnemoflow.pipeline.api.logsetup import configure_logging
from tests.actors.chat_server import ChatServer

SMALL_SEGMENTS = LogSettings(segment_bytes=4096)


def pytest_configure(config: pytest.Config) -> None:
    configure_logging(LoggingSettings(format="console", level="warning"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("MNEMO_HOME", "MNEMO_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user-home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "mnemo-home"


@pytest.fixture
def mem(home: Path) -> Iterator[Memory]:
    settings = load_settings(home=home).model_copy(update={"log": SMALL_SEGMENTS})
    with Memory.open(settings=settings) as m:
        yield m


@pytest.fixture
def chat() -> Iterator[ChatServer]:
    """A chat-completions server on loopback (the LLM, where a test configures one)."""
    server = ChatServer()
    yield server
    server.close()


@pytest.fixture
def event_log(tmp_path: Path) -> Iterator[EventLog]:
    with EventLog(tmp_path / "log", SMALL_SEGMENTS) as log:
        yield log


@pytest.fixture
def inputs(event_log: EventLog) -> InputLog:
    return InputLog(event_log, actor="test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the session's Ray run last: a test that starts a Ray cluster of its own (in a
    child process) must run before it, as two Ray instances at once fail to start here."""
    items.sort(key=lambda item: "ray_session" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def ray_session() -> Iterator[None]:
    """Ray, started once for the whole session (it costs seconds)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, namespace="mnemo", log_to_driver=False)
    yield
    ray.shutdown()
