"""Each stream's head, signed: the anchor that makes cutting or re-hashing the chain show.

A hash chain alone proves only that its records agree with each other: cut its last events,
or rewrite a record and re-hash everything after it, and it still verifies. So every stream
keeps a head — its last position and that event's hash — in `HEAD` beside its segments,
with an HMAC under the log's own key (`heads.key`, 0600, made when the log is first opened
for writing). `verify` checks that the chain reaches the head and holds the head's hash
there; `mnemo verify --heads` prints the heads so they can be kept elsewhere, and
`mnemo verify --anchor FILE` checks the log against heads kept before: whoever can rewrite
the data directory can also re-sign its heads, but not the copy kept elsewhere.

The head is written after each durable append, in place, in one of two fixed slots taken in
turn (a torn write spoils one slot, never both), and fsynced at each seal and at close: after
a power loss it may lag the log, never lead it. The price of that tolerance: spoiling the
newer slot by hand makes the older one count, so the last commit alone is anchored only by
heads kept elsewhere. A head ahead of the log on opening means
acknowledged events were cut (by damage or by hand); the writer records the loss in the head
(`lost`), signed with the rest, and goes on from the log's end, so the loss stays named.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from mnemoflow.eventlog.atomic import fsync_path, temporary_path
from mnemoflow.eventlog.errors import StorageError

HEAD_FILE = "HEAD"
KEY_FILE = "heads.key"
_SLOT = 4096
_MAX_LOST = 20  # the oldest losses go first past this (the count is kept)


@dataclass(frozen=True, slots=True)
class Lost:
    """Positions the log no longer holds although its signed head once did."""

    first: int
    last: int
    reason: str


@dataclass(frozen=True, slots=True)
class Head:
    position: int
    hash: bytes
    seq: int = 0
    lost: tuple[Lost, ...] = ()
    lost_count: int = 0  # losses ever recorded (`lost` keeps the newest)
    valid: bool = field(default=True, compare=False)  # its signature verified


def load_key(log_dir: Path, *, create: bool) -> bytes | None:
    """The log's head-signing key; made (once, whichever process comes first) if `create`."""
    path = log_dir / KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if not create:
            return None
    tmp = temporary_path(path).with_suffix(f".{os.getpid()}.{secrets.token_hex(4)}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(32))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process was first: keep theirs
            os.link(tmp, path)
        fsync_path(log_dir)
    except OSError as exc:
        raise StorageError(f"cannot write the log's head key {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return path.read_bytes()


def _signed(stream: str, head: Head) -> dict[str, object]:
    return {
        "stream": stream,
        "seq": head.seq,
        "position": head.position,
        "hash": head.hash.hex(),
        "lost": [[x.first, x.last, x.reason] for x in head.lost],
        "lost_count": head.lost_count,
    }


def _mac(key: bytes, doc: dict[str, object]) -> str:
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return hmac.digest(key, raw, "sha256").hex()  # one OpenSSL call (hmac.new: ~10x slower)


class HeadFile:
    """A stream's `HEAD`: two slots of 4 KiB, the newer valid one wins."""

    def __init__(self, directory: Path, stream: str, key: bytes | None) -> None:
        self.path = directory / HEAD_FILE
        self.stream, self._key = stream, key
        self._fd = -1

    def read(self) -> Head | None:
        """The newest slot; `valid` is False if no slot's signature verifies. None: no file."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc}") from exc
        heads = [
            self._parse(data[i : i + _SLOT]) for i in range(0, min(len(data), 2 * _SLOT), _SLOT)
        ]
        found = [h for h in heads if h is not None]
        good = [h for h in found if h.valid]
        if good:
            return max(good, key=lambda h: h.seq)
        if found:
            return max(found, key=lambda h: h.seq)
        return Head(0, b"", valid=False)

    def _parse(self, slot: bytes) -> Head | None:
        try:
            doc = json.loads(slot.rstrip(b" \x00"))
            mac = doc.pop("mac")
            head = Head(
                int(doc["position"]),
                bytes.fromhex(doc["hash"]),
                int(doc["seq"]),
                tuple(Lost(int(a), int(b), str(c)) for a, b, c in doc["lost"]),
                int(doc["lost_count"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        valid = (
            self._key is not None
            and doc.get("stream") == self.stream
            and hmac.compare_digest(str(mac), _mac(self._key, doc))
        )
        return Head(head.position, head.hash, head.seq, head.lost, head.lost_count, valid)

    def write(self, head: Head) -> None:
        """Into the slot after the last one written; not fsynced (see `sync`)."""
        assert self._key is not None
        doc = _signed(self.stream, head)
        doc["mac"] = _mac(self._key, doc)
        raw = json.dumps(doc).encode()
        if len(raw) > _SLOT:  # only the lost list can grow: a bound kept well below this
            raise StorageError(f"the head of stream {self.stream!r} does not fit its slot")
        try:
            if self._fd < 0:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            os.pwrite(self._fd, raw.ljust(_SLOT), (head.seq % 2) * _SLOT)
        except OSError as exc:
            raise StorageError(f"cannot write {self.path}: {exc}") from exc

    def sync(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
                self._fd = -1


def with_loss(head: Head, loss: Lost) -> tuple[Lost, ...]:
    return (*head.lost, loss)[-_MAX_LOST:]
