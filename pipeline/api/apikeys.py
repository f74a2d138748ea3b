"""API keys: who may touch which namespaces.

`mnemo keys create --ns A [--ns B] [--admin]` prints a key once; the file (`keys.json` in the
data directory, 0600) keeps only its SHA-256, the namespaces it may touch, whether it is an
admin key (every namespace, plus verify and stats) and whether it was revoked. Keys are 32
random bytes, so a plain SHA-256 cannot be reversed or guessed. A running server reloads the
file when it changes, so keys created or revoked meanwhile take effect at once.

An erased namespace leaves the file: keys scoped to it lose it (one left with no namespace is
revoked), so its name is in no file of the data directory (`drop_namespace`). Writes hold an
flock on `keys.json.lock`, so processes writing the file at once (`mnemo keys`, an erase)
never lose each other's change, and sweep a copy a crashed write left beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mnemoflow.eventlog import validation as check
from mnemoflow.eventlog.atomic import sweep_leftovers, temporary_path, write_atomic
from mnemoflow.pipeline.api.errors import PipelineError

PREFIX = "mnemo_"


class KeyFileError(PipelineError):
    """The key file is unreadable, or a key operation names no key."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str  # the first characters of the key: enough to name it, not to use it
    digest: str
    namespaces: tuple[str, ...] = ()
    admin: bool = False
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    revoked: bool = False

    def may(self, namespace: str) -> bool:
        return not self.revoked and (self.admin or namespace in self.namespaces)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._seen: float | None = None
        self._keys: dict[str, ApiKey] = {}

    def _load(self) -> dict[str, ApiKey]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._keys, self._seen = {}, None
            return self._keys
        if mtime != self._seen:
            try:
                doc = json.loads(self.path.read_text())
                keys = [ApiKey(**{**k, "namespaces": tuple(k["namespaces"])}) for k in doc["keys"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise KeyFileError(f"the key file {self.path} is unreadable: {exc}") from exc
            self._keys = {k.digest: k for k in keys}
            self._seen = mtime
        return self._keys

    def _save(self, keys: dict[str, ApiKey]) -> None:
        doc = {"keys": [{**asdict(k), "namespaces": list(k.namespaces)} for k in keys.values()]}
        write_atomic(self.path, json.dumps(doc, indent=1).encode(), mode=0o600)
        self._seen = None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[dict[str, ApiKey]]:
        """The keys as the file has them now, to change and save, with this process's lock
        and the file's flock held; a copy a crashed writer left is swept first."""
        with self._lock:
            fd = os.open(
                self.path.with_name(self.path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                sweep_leftovers([temporary_path(self.path)])
                self._seen = None  # another process may have written it since
                yield dict(self._load())
            finally:
                os.close(fd)  # releases the flock

    def create(self, namespaces: list[str], *, admin: bool = False) -> tuple[str, ApiKey]:
        """A new key (returned once, in clear) for the namespaces, or for all with admin."""
        if not namespaces and not admin:
            raise KeyFileError("a key needs at least one namespace (--ns), or --admin")
        for ns in namespaces:
            check.namespace(ns)
        secret = PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(secret[: len(PREFIX) + 8], _digest(secret), tuple(namespaces), admin)
        with self._writing() as keys:
            keys[key.digest] = key
            self._save(keys)
        return secret, key

    def revoke(self, key_id: str) -> ApiKey:
        with self._writing() as keys:
            found = [k for k in keys.values() if k.id == key_id]
            if not found:
                raise KeyFileError(f"no key {key_id!r}")
            revoked = ApiKey(**{**asdict(found[0]), "revoked": True})
            keys[revoked.digest] = revoked
            self._save(keys)
            return revoked

    def drop_namespace(self, namespace: str) -> int:
        """Take an erased namespace out of every key's scope (a key left with none is
        revoked); returns how many keys named it. Without a key file there is nothing to do."""
        if not self.path.exists() and not temporary_path(self.path).exists():
            return 0
        with self._writing() as keys:
            named = {d: k for d, k in keys.items() if namespace in k.namespaces}
            for digest, key in named.items():
                left = tuple(n for n in key.namespaces if n != namespace)
                keys[digest] = ApiKey(
                    **{**asdict(key), "namespaces": left, "revoked": key.revoked or not left}
                )
            if named:
                self._save(keys)
            return len(named)

    def list(self) -> list[ApiKey]:
        with self._lock:
            return sorted(self._load().values(), key=lambda k: k.created_at)

    def find(self, secret: str) -> ApiKey | None:
        """The key for a presented secret (compared in constant time), or None."""
        digest = _digest(secret)
        with self._lock:
            keys = self._load()
        for known, key in keys.items():
            if hmac.compare_digest(known, digest):
                return None if key.revoked else key
        return None
