"""An event with its payload opened: what actors and projections fold over."""

from __future__ import annotations

from typing import NamedTuple

from mnemoflow.eventlog.payloads import Payload
from mnemoflow.eventlog.schema import Record


class Opened(NamedTuple):
    """An event and its payload, decrypted (None when its namespace was erased)."""

    record: Record
    payload: Payload | None
