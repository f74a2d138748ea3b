"""The immutable event log: streams of Arrow IPC segments, hash-chained, encrypted per namespace.

Nothing here knows about Ray, DuckDB or FAISS.
"""

import mnemoflow.eventlog.derived
import mnemoflow.eventlog.episodes
import mnemoflow.eventlog.guards  # noqa: F401  (registers the guardrails' payloads)
from mnemoflow.eventlog.inputs import InputLog, StoreRequest
from mnemoflow.eventlog.log import EventLog, EventView, LogReport
from mnemoflow.eventlog.schema import Causation, Draft, Receipt, Record
from mnemoflow.eventlog.settings import LogSettings
from mnemoflow.eventlog.verify import VerifyReport

__all__ = [
    "Causation",
    "Draft",
    "EventLog",
    "EventView",
    "InputLog",
    "LogReport",
    "LogSettings",
    "Receipt",
    "Record",
    "StoreRequest",
    "VerifyReport",
]
