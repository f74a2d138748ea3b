"""Input rules, checked before anything is appended. Each failure names the rule it broke."""

from __future__ import annotations

import json
import math
import re
from datetime import datetime

from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.eventlog.payloads import Metadata
from mnemoflow.eventlog.settings import LogSettings

NAMESPACE_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
EVENT_ID_RE = re.compile(r"[A-Za-z0-9._:/@+=-]{1,256}")
MEMORY_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_MAX_METADATA_KEY = 128


def namespace(value: object) -> str:
    if not isinstance(value, str) or NAMESPACE_RE.fullmatch(value) is None:
        raise ValidationError(f"namespace must match [A-Za-z0-9._:-]{{1,128}}, got {_show(value)}")
    return value


def event_id(value: object) -> str:
    if not isinstance(value, str) or EVENT_ID_RE.fullmatch(value) is None:
        raise ValidationError(
            f"event id must match [A-Za-z0-9._:/@+=-]{{1,256}}, got {_show(value)}"
        )
    return value


def memory_id(value: object) -> str:
    if not isinstance(value, str) or MEMORY_ID_RE.fullmatch(value) is None:
        raise ValidationError(f"not a memory id: {_show(value)}")
    return value


def text(value: object, settings: LogSettings) -> str:
    """A non-empty, valid UTF-8 text within the size limit (bytes are decoded strictly)."""
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"text is not valid UTF-8 (byte {exc.start})") from exc
    if not isinstance(value, str):
        raise ValidationError(f"text must be a string, got {type(value).__name__}")
    try:
        size = len(value.encode("utf-8", errors="strict"))
    except UnicodeEncodeError as exc:
        raise ValidationError(f"text is not valid UTF-8 (lone surrogate at {exc.start})") from exc
    if not value.strip():
        raise ValidationError("text is empty")
    if "\x00" in value:
        raise ValidationError("text contains a NUL character")
    if size > settings.max_text_bytes:
        raise ValidationError(
            f"text is {size} bytes, over the limit of {settings.max_text_bytes} bytes"
            " ([log] max_text_bytes raises it)"
        )
    return value


def _digits(item: int | float | bool | None) -> int:
    if not isinstance(item, int) or isinstance(item, bool):
        return 24
    try:
        return len(str(item))
    except ValueError as exc:  # over Python's limit of digits for an int as text
        raise ValidationError("metadata holds a number too large to write") from exc


def metadata(value: object, settings: LogSettings) -> Metadata:
    """A flat JSON object: string keys, scalar values (string, number, bool, null)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"metadata must be a flat JSON object, got {type(value).__name__}")
    bound = 2  # an upper bound of the JSON's size: most metadata is far below the limit
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > _MAX_METADATA_KEY:
            raise ValidationError(f"metadata key must be a string of 1-128 characters: {key!r}")
        if isinstance(item, dict | list | tuple):
            raise ValidationError(f"metadata must be flat: {key!r} holds a {type(item).__name__}")
        if not isinstance(item, str | int | float | bool) and item is not None:
            raise ValidationError(
                f"metadata value of {key!r} must be a string, number, bool or null"
            )
        if isinstance(item, float) and not math.isfinite(item):
            raise ValidationError(f"metadata value of {key!r} is not a finite number")
        for text in (key, item) if isinstance(item, str) else (key,):
            try:
                text.encode("utf-8", errors="strict")
            except UnicodeEncodeError as exc:
                raise ValidationError("metadata is not valid UTF-8") from exc
        # A character is at most 6 bytes in JSON (an escaped control character), a float or
        # a literal at most 24; quotes, colon and comma take 6.
        bound += 6 * len(key) + 6 + (6 * len(item) if isinstance(item, str) else _digits(item))
    if bound <= settings.max_metadata_bytes:
        return dict(value)
    size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    if size > settings.max_metadata_bytes:
        raise ValidationError(
            f"metadata is {size} bytes as JSON, over the limit of {settings.max_metadata_bytes}"
        )
    return dict(value)


def occurred_at(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ValidationError(f"occurred_at is not an ISO 8601 time: {value!r}") from exc
    if not isinstance(value, datetime):
        raise ValidationError(f"occurred_at must be a datetime, got {type(value).__name__}")
    return value


def _show(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
