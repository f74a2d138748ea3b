"""Errors raised by the event log.

Every error the project raises derives from :class:`MnemoError`; the other packages import it
from here, since ``eventlog`` is the bottom of the import chain::

    MnemoError
    └── LogError                      anything the event log refuses or cannot do
        ├── ValidationError           bad input: nothing was appended
        ├── NamespaceNotFound         a namespace the log has never seen (or has erased)
        ├── MemoryNotFound            a memory id the log has never seen
        ├── MemoryGone                the memory was forgotten or erased; it cannot change
        ├── LogLocked                 another process holds the stream's single writer
        ├── StorageError              the disk refused a read or write (pyarrow, OS errors)
        │   └── AppendFailed          an append was not made durable; nothing was acknowledged
        ├── CorruptSegment            a segment file cannot be parsed; names the file
        └── KeyringError              the keyring file is missing, unreadable or malformed
            └── KeyErased             the key was destroyed: its namespace is erased
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar


class MnemoError(Exception):
    """Base of every error mnemoflow raises on purpose."""

    # Whether the message may go into a log line: it names what failed and where (paths,
    # positions, opaque ids), never a memory's words, metadata or a namespace's name.
    loggable: ClassVar[bool] = True


def loggable(exc: BaseException) -> str:
    """An exception as a log line may carry it. Our own errors and the operating system's
    keep their message where it names only what failed and where; any other exception's
    message may quote the data it choked on (pydantic's `input_value`, a decoder's bytes,
    an answer's words), so only its kind is logged."""
    if (isinstance(exc, MnemoError) and exc.loggable) or (
        isinstance(exc, OSError) and not isinstance(exc, MnemoError)
    ):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (its message is not logged: it may quote memory text)"


class LogError(MnemoError):
    """The event log refused a call or could not complete it."""


class ValidationError(LogError, ValueError):
    """The input broke a rule; the message says which. Nothing was appended."""

    loggable = False  # it may show the value refused


class NamespaceNotFound(LogError, KeyError):
    """No memory was ever stored in this namespace, or it has been erased."""

    loggable = False  # it names the namespace

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else "namespace not found"


class MemoryNotFound(LogError, KeyError):
    """No memory with this id exists in the log."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "memory not found"


class MemoryGone(LogError):
    """The memory was forgotten or its namespace erased; it can no longer change."""


class EpisodeClosed(LogError):
    """The episode is completed: it takes no more steps and no second completion."""


class MemoryIdTaken(LogError):
    """A store chose a memory id (an import keeps the ids it carries) that another event of
    this log already uses."""


class LogLocked(LogError):
    """Another process is the writer of this log."""


class StorageError(LogError, OSError):
    """The filesystem refused an operation."""


class AppendFailed(StorageError):
    """An append could not be made durable. Nothing of it was acknowledged."""


class CorruptSegment(LogError):
    """A segment file cannot be parsed."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class KeyringError(LogError):
    """The keyring file is unreadable or malformed."""


class KeyErased(KeyringError):
    """The key was destroyed when its namespace was erased; nothing can be sealed with it."""

    loggable = False  # the key's id holds the erased namespace's name
