"""The immutable event log: streams of Arrow IPC segments, hash-chained, encrypted per namespace.

Nothing here knows about Ray, DuckDB or FAISS.
"""

import eventlog.derived  # noqa: F401  (registers the derived payloads)
from eventlog.inputs import InputLog, StoreRequest
from eventlog.log import EventLog, EventView, LogReport
from eventlog.schema import Causation, Draft, Receipt, Record
from eventlog.settings import LogSettings
from eventlog.verify import VerifyReport

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
