"""Bad input gets a clear error and appends nothing."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnemoflow.eventlog import InputLog, StoreRequest
from mnemoflow.eventlog.errors import MemoryGone, MemoryNotFound, ValidationError

LIMIT = 64 * 1024


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("x" * (LIMIT + 1), "over the limit"),
        ("é" * (LIMIT // 2 + 1), "over the limit"),  # the limit is in bytes, not characters
        (b"\xff\xfe invalid", "not valid UTF-8"),
        ("lone \ud800 surrogate", "not valid UTF-8"),
        ("nul \x00 inside", "NUL"),
        (42, "must be a string"),
        (None, "must be a string"),
        (["a"], "must be a string"),
    ],
)
def test_bad_text_is_refused(inputs: InputLog, text: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        inputs.store(text, "alice")
    assert inputs._log.input.last_position == 0


def test_text_at_the_limit_is_accepted(inputs: InputLog) -> None:
    assert inputs.store("x" * LIMIT, "alice").position == 1


def test_valid_utf8_bytes_are_decoded(inputs: InputLog) -> None:
    r = inputs.store("café ☕".encode(), "alice")
    assert inputs.history(r.memory_id)[0].text == "café ☕"


@pytest.mark.parametrize(
    "namespace",
    ["", "a b", "x" * 129, "émile", "../etc", "a/b", "tab\t", None, 7, "semi;colon"],
)
def test_bad_namespace_is_refused(inputs: InputLog, namespace: Any) -> None:
    with pytest.raises(ValidationError, match="namespace"):
        inputs.store("text", namespace)
    assert inputs._log.input.last_position == 0


@pytest.mark.parametrize("namespace", ["a", "user:42", "team.alpha-1_x", "x" * 128])
def test_good_namespaces(inputs: InputLog, namespace: str) -> None:
    assert inputs.store("text", namespace).position == 1


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"a": {"b": 1}}, "flat"),
        ({"a": [1, 2]}, "flat"),
        ([("a", 1)], "flat JSON object"),
        ("k=v", "flat JSON object"),
        ({1: "a"}, "key"),
        ({"": "a"}, "key"),
        ({"a": math.nan}, "finite"),
        ({"a": math.inf}, "finite"),
        ({"a": object()}, "string, number, bool or null"),
        ({"a": b"bytes"}, "string, number, bool or null"),
        ({"a": "x" * 20_000}, "over the limit"),
        ({"a": "\x01" * 2_731}, "over the limit"),  # 16,386 bytes once escaped
        ({f"k{i}": 10**100 for i in range(200)}, "over the limit"),
        ({"a": 10**5000}, "too large"),
        ({"a": "\ud800"}, "UTF-8"),
        ({"\udfff": 1}, "UTF-8"),
    ],
)
def test_bad_metadata_is_refused(inputs: InputLog, metadata: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        inputs.store("text", "alice", metadata)
    assert inputs._log.input.last_position == 0


def test_flat_metadata_round_trips(inputs: InputLog) -> None:
    meta = {"s": "x", "i": 3, "f": 1.5, "b": True, "n": None}
    r = inputs.store("text", "alice", meta)
    assert inputs.history(r.memory_id)[0].metadata == meta


@pytest.mark.parametrize("event_id", ["", "has space", "x" * 257, "ünï", 5])
def test_bad_event_id_is_refused(inputs: InputLog, event_id: Any) -> None:
    with pytest.raises(ValidationError, match="event id"):
        inputs.store("text", "alice", event_id=event_id)


@pytest.mark.parametrize("when", ["yesterday", "2024-13-01", 1700000000])
def test_bad_occurred_at_is_refused(inputs: InputLog, when: Any) -> None:
    with pytest.raises(ValidationError, match="occurred_at"):
        inputs.store("text", "alice", occurred_at=when)


def test_one_bad_row_in_a_batch_appends_nothing(inputs: InputLog) -> None:
    batch = [StoreRequest("fine", "alice"), StoreRequest("", "alice"), StoreRequest("ok", "bob")]
    with pytest.raises(ValidationError):
        inputs.store_many(batch)
    assert inputs._log.input.last_position == 0


def test_changes_to_unknown_or_forgotten_memories_are_refused(inputs: InputLog) -> None:
    with pytest.raises(MemoryNotFound):
        inputs.update("0123456789abcdef", "new")
    with pytest.raises(ValidationError, match="memory id"):
        inputs.forget("not a memory id!")
    r = inputs.store("text", "alice")
    inputs.forget(r.memory_id)
    before = inputs._log.input.last_position
    for change in (
        lambda: inputs.update(r.memory_id, "again"),
        lambda: inputs.forget(r.memory_id),
        lambda: inputs.feedback(r.memory_id, useful=True),
    ):
        with pytest.raises(MemoryGone, match="forgotten"):
            change()
    assert inputs._log.input.last_position == before


def test_feedback_needs_a_real_bool(inputs: InputLog) -> None:
    r = inputs.store("text", "alice")
    with pytest.raises(ValidationError, match="true or false"):
        inputs.feedback(r.memory_id, useful="yes")  # type: ignore[arg-type]


def test_retried_forget_with_its_event_id_returns_the_first_receipt(inputs: InputLog) -> None:
    r = inputs.store("text", "alice")
    first = inputs.forget(r.memory_id, event_id="forget-1")
    assert inputs.forget(r.memory_id, event_id="forget-1") == first
    other = inputs.store("text", "bob")  # the same id in another namespace is another event
    assert inputs.forget(other.memory_id, event_id="forget-1") != first


def test_a_chosen_event_id_is_unlinkable_once_its_namespace_is_erased(inputs: InputLog) -> None:
    """Kept as an HMAC under the namespace's key: after the erase, a retry is refused as
    erased (the key that would find the first receipt is gone), and the same id in the
    namespace begun again under its name is a new event."""
    r = inputs.store("text", "carol", event_id="carol-row-1")
    inputs.erase("carol")
    with pytest.raises(MemoryGone, match="erased"):
        inputs.forget(r.memory_id, event_id="carol-row-1")
    again = inputs.store("text", "carol", event_id="carol-row-1")
    assert again.event_id != r.event_id and again.memory_id != r.memory_id


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.one_of(st.text(max_size=300), st.binary(max_size=300)), namespace=st.text(max_size=20)
)
def test_any_input_is_stored_exactly_or_refused_cleanly(
    inputs: InputLog, text: str | bytes, namespace: str
) -> None:
    """Property: a store either round-trips the text exactly, or raises ValidationError and
    appends nothing."""
    before = inputs._log.input.last_position
    try:
        r = inputs.store(text, namespace)
    except ValidationError:
        assert inputs._log.input.last_position == before
        return
    expected = text.decode("utf-8") if isinstance(text, bytes) else text
    assert inputs.history(r.memory_id)[0].text == expected
    assert r.position == before + 1


def test_a_batch_gets_an_id_of_its_own_for_every_event_and_memory(inputs: InputLog) -> None:
    receipts = inputs.store_many(
        [StoreRequest(f"text {i}", "alice") for i in range(50)]
        + [StoreRequest("mine", "alice", event_id="client-chosen-1")]
    )
    ids = [r.event_id for r in receipts] + [r.memory_id for r in receipts]
    assert len(set(ids)) == len(ids) == 102
    # the caller's id is kept keyed: the same on a retry, never as given
    alice = inputs.namespace_id("alice")
    assert alice and receipts[-1].event_id == inputs.keyed_event_id(alice, "client-chosen-1")
    assert receipts[-1].event_id.startswith("id:") and "client" not in receipts[-1].event_id
    assert inputs.store("mine", "alice", event_id="client-chosen-1") == receipts[-1]
    assert all(len(i or "") == 32 and int(i or "", 16) >= 0 for i in ids[:50] + ids[51:])
