"""The extractor actor: rules by default; an OpenAI-compatible LLM when configured, tested
against a real local HTTP server speaking the chat-completions protocol. Its outputs are
logged, so replays never call the model again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mnemoflow import Memory
from mnemoflow.actors.extractor import ExtractorActor
from mnemoflow.actors.inline import LogHistory
from mnemoflow.actors.llm import ChatClient, LLMError, LLMSettings
from mnemoflow.eventlog import EventLog, InputLog
from mnemoflow.eventlog.derived import MemoryExtracted
from mnemoflow.pipeline.api.config import load_settings
from tests.actors.chat_server import LLM_ANSWER, ChatServer
from tests.projections.events import Events


def test_rules_extract_without_any_model() -> None:
    events = Events()
    stored = events.stored("m1", "Alice: I moved to Berlin and love pottery.")
    (derived,) = ExtractorActor().process([stored, events.feedback("m1", True)])
    payload = derived.payload
    assert isinstance(payload, MemoryExtracted) and payload.extractor == "rules"
    assert derived.source_position == stored.record.position
    assert {e.key for e in payload.entities} >= {"alice", "berlin"}
    assert payload.claim is not None and payload.claim.attribute == "residence"


def test_erased_events_derive_nothing() -> None:
    events = Events()
    assert ExtractorActor().process([events.stored("m1", None)]) == []


def test_llm_extraction_speaks_chat_completions(
    chat: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_LLM_KEY", "sk-test")
    chat.answer = LLM_ANSWER
    actor = ExtractorActor(LLMSettings(base_url=chat.url, model="tiny", api_key_env="TEST_LLM_KEY"))
    events = Events()
    (derived,) = actor.process([events.stored("m1", "Alice: I moved to Berlin, working at Acme")])
    payload = derived.payload
    assert isinstance(payload, MemoryExtracted)
    assert payload.extractor == "llm:tiny"
    assert payload.facts == LLM_ANSWER["facts"]
    assert payload.category == "personal"
    assert payload.claim is not None and payload.claim.value == "berlin"
    assert {"acme", "berlin", "alice"} <= {e.key for e in payload.entities}
    (request,) = chat.requests
    assert request["model"] == "tiny" and request["response_format"] == {"type": "json_object"}
    assert request["messages"][-1] == {
        "role": "user",
        "content": "Alice: I moved to Berlin, working at Acme",
    }
    assert chat.headers[0]["Authorization"] == "Bearer sk-test"


@pytest.mark.parametrize("answer", ["not json at all", "[1, 2]", "```json\n{oops```"])
def test_a_malformed_llm_answer_falls_back_to_the_rules(chat: ChatServer, answer: str) -> None:
    chat.answer = answer
    actor = ExtractorActor(LLMSettings(base_url=chat.url, model="tiny", retries=0))
    with capture_logs() as logs:
        (derived,) = actor.process([Events().stored("m1", "Bob: I live in Paris")])
    assert isinstance(derived.payload, MemoryExtracted)
    assert derived.payload.extractor == "rules"
    assert any(entry["event"] == "extractor.llm_failed" for entry in logs)


SECRET = "Quokka-7731 lives at 4 Elm Row"


@pytest.mark.parametrize(
    ("answer", "reply"),
    [
        (f"I cannot do JSON, but: {SECRET}", None),  # not JSON
        (f'```json\n{{"facts": "{SECRET}"', None),  # a fence, cut short
        ([SECRET], None),  # JSON, not an object
        ({"facts": 7, "entities": SECRET, "claim": {"attribute": [SECRET], "value": 1}}, None),
        ({"entities": [{"text": SECRET, "type": {"x": SECRET}}]}, None),
        (None, json.dumps({"error": {"message": SECRET}}).encode()),  # not chat-completions
        (None, f"<html>{SECRET}</html>".encode()),  # not JSON at all
    ],
)
def test_no_log_line_carries_memory_or_model_text(
    chat: ChatServer, answer: object, reply: bytes | None
) -> None:
    """A model that echoes what it was sent, answers in the wrong shape or not at all: the
    extractor falls back to the rules and what it logs names the failure, never the text."""
    chat.answer, chat.reply = answer, reply
    actor = ExtractorActor(LLMSettings(base_url=chat.url, model="tiny", retries=0))
    with capture_logs() as logs:
        (derived,) = actor.process([Events().stored("m1", f"Bob: {SECRET}")])
    assert isinstance(derived.payload, MemoryExtracted)
    if derived.payload.extractor == "rules":
        assert [e["event"] for e in logs] == ["extractor.llm_failed"]
    else:  # what could be read was kept, what could not was left out
        assert derived.payload.extractor == "llm:tiny"
    for word in ("Quokka", "7731", "Elm Row"):
        assert word not in repr(logs)


def test_an_unreachable_llm_is_an_error_the_actor_survives() -> None:
    settings = LLMSettings(base_url="http://127.0.0.1:9/v1", model="m", retries=0, timeout=2)
    with pytest.raises(LLMError, match="failed after 1 tries"):
        ChatClient(settings).complete_json("s", "u")
    with pytest.raises(LLMError, match="http"):
        ChatClient(LLMSettings(base_url="file:///etc/passwd", model="m"))
    (derived,) = ExtractorActor(settings).process([Events().stored("m1", "I live in Oslo")])
    assert isinstance(derived.payload, MemoryExtracted) and derived.payload.extractor == "rules"


def test_replays_read_the_logged_extraction_and_never_call_the_llm(
    chat: ChatServer, tmp_path: Path
) -> None:
    chat.answer = LLM_ANSWER
    settings = load_settings(home=tmp_path / "h")
    settings = settings.model_copy(update={"llm": LLMSettings(base_url=chat.url, model="tiny")})
    with Memory.open(settings=settings) as mem:
        r = mem.store("Alice: I moved to Berlin, working at Acme", namespace="alice")
        mem.sync()
        assert len(chat.requests) == 1
        before = mem.checksums()
        mem.rebuild()
        assert mem.checksums() == before
        hits = mem.recall("Acme", namespace="alice", k=1, filters={"category": "personal"})
        assert [h.memory_id for h in hits] == [r.memory_id]
    with Memory.open(settings=settings) as mem:
        mem.sync()
    assert len(chat.requests) == 1  # neither the rebuild nor a restart asked again


def test_the_model_connections_close_with_the_memory(chat: ChatServer, tmp_path: Path) -> None:
    """The extractor's client (an httpx pool) was never closed; it closes with the runtime,
    and a client passed in stays the caller's."""
    chat.answer = LLM_ANSWER
    settings = load_settings(home=tmp_path / "h")
    settings = settings.model_copy(update={"llm": LLMSettings(base_url=chat.url, model="tiny")})
    with Memory.open(settings=settings) as mem:
        mem.store("Alice: I moved to Berlin", namespace="alice")
        mem.sync()
        actor = mem.runtime.follower("extractor")
        assert isinstance(actor, ExtractorActor) and actor._client is not None
        http = actor._client._http
        assert not http.is_closed
    assert http.is_closed
    theirs = ChatClient(LLMSettings(base_url=chat.url, model="tiny"))
    ExtractorActor(client=theirs).close()
    assert not theirs._http.is_closed
    theirs.close()


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_batch_opened_before_an_erase_sends_no_erased_text_to_the_llm(
    chat: ChatServer, tmp_path: Path, concurrency: int
) -> None:
    """The erase lands while the extractor works through a batch it already opened (the
    LLM's first answer is its moment): the rest of the erased namespace's texts never reach
    the model, and nothing is derived from them; the other namespace goes on."""
    chat.answer, chat.delay = LLM_ANSWER, 0.2
    with EventLog(tmp_path / "log") as log:
        inputs = InputLog(log)
        texts = [("gone", "Gone one: Zed's secret"), ("gone", "Gone two: Zed's plan")]
        texts += [("kept", "Kept: Amy likes tea"), ("gone", "Gone three: Zed's code")]
        for namespace, text in texts:
            inputs.store(text, namespace)
        batch = log.opened(log.input.read())
        gone = log.keyring.namespace_id("gone")
        erased: list[bool] = []

        def erase_once(_: dict[str, Any]) -> None:
            if not erased:
                erased.append(True)
                inputs.erase("gone")

        chat.on_request = erase_once
        actor = ExtractorActor(
            LLMSettings(base_url=chat.url, model="tiny", concurrency=concurrency),
            lookups=LogHistory(log),
        )
        derived = actor.process(batch)
        names = [log.namespace_name(d.namespace) for d in derived]
    sent = [r["messages"][-1]["content"] for r in chat.requests]
    if concurrency == 1:
        assert sent == ["Gone one: Zed's secret", "Kept: Amy likes tea"]
        assert names == [gone, "kept"]  # the first was under way (its name is gone with it)
    else:  # the second call may have left beside the first, before the erase; none after
        assert sent[0] in ("Gone one: Zed's secret", "Gone two: Zed's plan")
        assert set(sent) - {"Gone two: Zed's plan"} == {
            "Gone one: Zed's secret",
            "Kept: Amy likes tea",
        }
        assert names == [gone] * (len(sent) - 1) + ["kept"]
