"""The LoCoMo format (shared/data/README.md), read the same by `mnemo ingest --format locomo`
and by `mnemo eval locomo`: one conversation per sample; every turn a memory
("{speaker}: {text}", plus " [shares image: {caption}]"), its event time the session's date,
its dia_id in metadata; the questions of categories 1-4 that have evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mnemoflow.eventlog import StoreRequest
from mnemoflow.eventlog.errors import ValidationError


@dataclass(frozen=True, slots=True)
class Question:
    text: str
    evidence: frozenset[str]
    category: int


@dataclass(frozen=True, slots=True)
class Conversation:
    sample_id: str
    turns: list[StoreRequest]
    questions: list[Question]
    # When its questions are asked: at its last session (so decay, and words such as "last
    # week", read the same on any day the evaluation runs).
    asked_at: datetime | None = None


def _session_time(text: str) -> datetime:
    return datetime.strptime(text, "%I:%M %p on %d %B, %Y").replace(tzinfo=UTC)


def load_locomo(path: Path) -> list[Conversation]:
    try:
        samples = json.loads(path.read_text("utf-8"))
        return [_conversation(sample) for sample in samples]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"{path} is not a LoCoMo file: {exc}") from exc


def _conversation(sample: dict[str, Any]) -> Conversation:
    sample_id = str(sample["sample_id"])
    conv = sample["conversation"]
    turns = []
    when = None
    n = 1
    while f"session_{n}" in conv:
        when = _session_time(conv[f"session_{n}_date_time"])
        for turn in conv[f"session_{n}"]:
            text = f"{turn['speaker']}: {turn['text']}"
            if turn.get("blip_caption"):
                text += f" [shares image: {turn['blip_caption']}]"
            turns.append(
                StoreRequest(
                    text,
                    sample_id,
                    {"dia_id": turn["dia_id"]},
                    when,
                    f"locomo:{sample_id}:{turn['dia_id']}",
                )
            )
        n += 1
    questions = [
        Question(str(q["question"]), frozenset(q["evidence"]), int(q["category"]))
        for q in sample["qa"]
        if q["category"] in (1, 2, 3, 4) and q.get("evidence")
    ]
    return Conversation(sample_id, turns, questions, when)
