"""The extractor: reads each stored or updated memory and logs what it found.

Rule-based by default (`extraction.extract`). With ``[llm]`` configured, an OpenAI-compatible
model reads the text instead (facts, entities, category, claim); the rules still resolve times
and compute the SimHash, and if the model fails the rules answer alone. Either way the result
is a `memory.extracted` event, so a replay reads the log and never calls the model again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from mnemoflow.actors.extraction import CATEGORIES, ENTITY_TYPES, Extraction, extract
from mnemoflow.actors.follower import Derived, Lookups, Opened
from mnemoflow.actors.llm import ChatClient, LLMError, LLMSettings
from mnemoflow.eventlog.derived import ClaimPart, EntityMention, MemoryExtracted, TimeSpan
from mnemoflow.eventlog.payloads import MemoryStored, MemoryUpdated, writer_time
from mnemoflow.eventlog.schema import (
    EXTRACTED_STREAM,
    INPUT_STREAM,
    MEMORY_EXTRACTED,
    MEMORY_STORED,
    MEMORY_UPDATED,
    to_micros,
)

log = structlog.get_logger(__name__)

PROMPT = f"""You extract structured memory from one message a user told an assistant.
Answer with one JSON object and nothing else, with these keys:
- "facts": list of short standalone sentences, one per atomic fact (resolve "I" to the speaker
  when the message starts with "Name:").
- "entities": list of {{"text": ..., "type": one of {list(ENTITY_TYPES)}}} for people,
  organisations, places, products and dates mentioned.
- "category": one of {list(CATEGORIES)}.
- "claim": null, or {{"subject": who the main fact is about, "attribute": a snake_case
  attribute such as residence, employer, occupation, likes, favorite_food, age,
  "value": its value, "negated": true if the message denies it,
  "single_valued": true if a new value replaces an old one (residence), false if values add
  up (likes)}}.
"""


class ExtractorActor:
    name = "extractor"
    upstream = INPUT_STREAM
    output = EXTRACTED_STREAM

    def __init__(
        self,
        llm: LLMSettings | None = None,
        client: ChatClient | None = None,
        lookups: Lookups | None = None,
    ) -> None:
        """`lookups`: asked, before each memory is read, whether its key still exists: a
        batch opened before an erase sends none of the erased texts to the model."""
        self.llm = llm or LLMSettings()
        self._client = client
        self._lookups = lookups
        self._owns_client = self._client is None and self.llm.enabled
        if self._owns_client:
            self._client = ChatClient(self.llm)

    def close(self) -> None:
        """Close the model's connections, if this actor opened them (a client passed in is
        the caller's to close)."""
        if self._owns_client and self._client is not None:
            self._client.close()

    def process(self, batch: Sequence[Opened]) -> list[Derived]:
        todo = []
        for event in batch:
            r, payload = event.record, event.payload
            if r.kind not in (MEMORY_STORED, MEMORY_UPDATED) or payload is None:
                continue
            assert isinstance(payload, MemoryStored | MemoryUpdated)
            if self._lookups is not None and not self._lookups.readable(r.key_id):
                continue  # erased since the batch was opened: its text goes nowhere
            when = writer_time(r.occurred_at or r.recorded_at, payload)  # its clock
            todo.append((r, payload.text, when))
        found: list[MemoryExtracted | None] = [
            to_payload(extract(text, when), "rules") for _, text, when in todo
        ]
        if self._client is not None and todo:
            # `[llm] concurrency` calls at a time, each asking just before it is sent whether
            # its key still stands: a batch opened before an erase sends no more of its texts
            lookups = self._lookups
            answers = self._client.complete_many(
                PROMPT,
                [text for _, text, _ in todo],
                None if lookups is None else lambda i: lookups.readable(todo[i][0].key_id),
            )
            found = [
                None if a is None or rules is None else self._read(a, rules)
                for a, rules in zip(answers, found, strict=True)
            ]
        return [
            Derived(MEMORY_EXTRACTED, r.namespace, r.memory_id, extracted, r.position, when)
            for (r, _, when), extracted in zip(todo, found, strict=True)
            if extracted is not None  # erased before its call: nothing is derived from it
        ]

    def _read(self, answer: dict[str, Any] | LLMError, rules: MemoryExtracted) -> MemoryExtracted:
        if isinstance(answer, LLMError):  # its words never carry the text (see actors.llm)
            log.warning("extractor.llm_failed", error=str(answer))
            return rules
        try:
            return _from_llm(answer, rules, self.llm.model)
        except (TypeError, ValueError, AttributeError) as exc:
            # A field of the wrong shape (`"facts": 7`); the exception's words may quote the
            # answer, so only its kind is logged.
            log.warning(
                "extractor.llm_failed", error=f"answer of the wrong shape: {type(exc).__name__}"
            )
            return rules


def to_payload(found: Extraction, extractor: str) -> MemoryExtracted:
    return MemoryExtracted(
        extractor=extractor,
        facts=found.facts,
        entities=[EntityMention(text=e.text, type=e.type, key=e.key) for e in found.entities],
        category=found.category,
        times=[
            TimeSpan(text=t.text, start=to_micros(t.start), end=to_micros(t.end))
            for t in found.times
        ],
        claim=None
        if found.claim is None
        else ClaimPart(
            subject=found.claim.subject,
            attribute=found.claim.attribute,
            value=found.claim.value,
            negated=found.claim.negated,
            single_valued=found.claim.single_valued,
        ),
        simhash=found.simhash,
        speaker=found.speaker,
    )


def _from_llm(answer: dict[str, Any], rules: MemoryExtracted, model: str) -> MemoryExtracted:
    """The model's reading where it is well-formed, the rules' where it is not."""
    facts = [str(f) for f in answer.get("facts") or [] if str(f).strip()] or rules.facts
    entities = list(rules.entities)
    seen = {e.key for e in entities}
    for item in answer.get("entities") or []:
        if not isinstance(item, dict) or not str(item.get("text", "")).strip():
            continue
        text = str(item["text"]).strip()
        kind = str(item.get("type", "other")).lower()
        key = text.casefold()
        if key not in seen:
            seen.add(key)
            entities.append(
                EntityMention(text=text, type=kind if kind in ENTITY_TYPES else "other", key=key)
            )
    category = str(answer.get("category", "")).lower()
    claim = rules.claim
    raw_claim = answer.get("claim")
    if isinstance(raw_claim, dict) and all(raw_claim.get(k) for k in ("attribute", "value")):
        claim = ClaimPart(
            subject=str(raw_claim.get("subject") or rules.speaker or "self").casefold(),
            attribute=str(raw_claim["attribute"]).casefold().replace(" ", "_"),
            value=str(raw_claim["value"]).casefold(),
            negated=bool(raw_claim.get("negated", False)),
            single_valued=bool(raw_claim.get("single_valued", True)),
        )
    return rules.model_copy(
        update={
            "extractor": f"llm:{model}",
            "facts": facts,
            "entities": entities,
            "category": category if category in CATEGORIES else rules.category,
            "claim": claim,
        }
    )
