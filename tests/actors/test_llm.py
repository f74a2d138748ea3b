"""The chat-completions client against a real HTTP server on loopback: what it retries (the
server's trouble: 5xx, 429, a dropped connection) and what it does not (the request's: other
4xx), how long it waits (the server's Retry-After; never after the last try), and how many
calls it has in flight at once (`[llm] concurrency`)."""

from __future__ import annotations

import pytest

from mnemoflow.actors import llm
from mnemoflow.actors.extractor import ExtractorActor
from mnemoflow.actors.llm import ChatClient, LLMError, LLMSettings
from mnemoflow.eventlog.derived import MemoryExtracted
from tests.actors.chat_server import LLM_ANSWER, ChatServer
from tests.projections.events import Events


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's waits between tries, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr(llm, "_sleep", slept.append)
    return slept


def settings(chat: ChatServer, **more: object) -> LLMSettings:
    return LLMSettings.model_validate({"base_url": chat.url, "model": "tiny", **more})


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_a_refused_request_is_not_retried(
    chat: ChatServer, waits: list[float], status: int
) -> None:
    """A 4xx says the request is wrong: the same request again is wrong again."""
    chat.status = status
    with pytest.raises(LLMError, match=str(status)):
        ChatClient(settings(chat, retries=3)).complete_json("s", "u")
    assert len(chat.requests) == 1
    assert waits == []


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_the_servers_trouble_is_retried_without_a_wait_after_the_last_try(
    chat: ChatServer, waits: list[float], status: int
) -> None:
    chat.status = status
    with pytest.raises(LLMError, match="failed after 3 tries"):
        ChatClient(settings(chat, retries=2)).complete_json("s", "u")
    assert len(chat.requests) == 3
    assert len(waits) == 2  # between the tries, none after the last


def test_retry_after_is_honoured(chat: ChatServer, waits: list[float]) -> None:
    chat.answer = LLM_ANSWER
    chat.script = [(429, {"Retry-After": "7"}), (503, {"Retry-After": "0"})]
    answer = ChatClient(settings(chat, retries=2)).complete_json("s", "u")
    assert answer == LLM_ANSWER
    assert waits == [7.0, 0.0]
    assert len(chat.requests) == 3


def test_a_retry_after_over_the_limit_fails_now(chat: ChatServer, waits: list[float]) -> None:
    """A server that asks for an hour's pause does not stall the extractor for an hour: the
    call fails (the extractor keeps the rules' reading) and says why."""
    chat.script = [(429, {"Retry-After": "3600"})]
    with pytest.raises(LLMError, match="max_wait"):
        ChatClient(settings(chat, retries=2, max_wait=30)).complete_json("s", "u")
    assert waits == [] and len(chat.requests) == 1


def test_calls_run_concurrently_up_to_the_setting(chat: ChatServer) -> None:
    chat.answer, chat.delay = LLM_ANSWER, 0.2
    client = ChatClient(settings(chat, concurrency=3))
    answers = client.complete_many("s", [f"u{i}" for i in range(8)])
    assert answers == [LLM_ANSWER] * 8
    assert chat.most_in_flight == 3
    sent = sorted(r["messages"][-1]["content"] for r in chat.requests)
    assert sent == sorted(f"u{i}" for i in range(8))


def test_one_failed_call_of_many_is_its_own_error(chat: ChatServer, waits: list[float]) -> None:
    chat.answer = LLM_ANSWER
    chat.script = [(400, {})]
    answers = ChatClient(settings(chat, concurrency=1)).complete_many("s", ["a", "b"])
    assert isinstance(answers[0], LLMError) and answers[1] == LLM_ANSWER


def test_the_extractor_sends_a_batch_concurrently(chat: ChatServer) -> None:
    """One call per event, but not one after another: a batch of stores is read by the model
    `[llm] concurrency` at a time, and each derived event keeps its own memory."""
    chat.answer, chat.delay = LLM_ANSWER, 0.2
    actor = ExtractorActor(settings(chat, concurrency=4))
    events = Events()
    batch = [events.stored(f"m{i}", f"Alice: note {i}") for i in range(6)]
    derived = actor.process(batch)
    assert [d.memory_id for d in derived] == [f"m{i}" for i in range(6)]
    assert all(isinstance(d.payload, MemoryExtracted) for d in derived)
    assert {d.payload.extractor for d in derived} == {"llm:tiny"}  # type: ignore[union-attr]
    assert 1 < chat.most_in_flight <= 4
