"""Per-namespace data keys, and the AES-GCM sealing of payloads with them.

The keyring is one JSON file (mode 0600) in the log directory, replaced atomically on every
change. Only the log's owner changes it; every other process (deriving actors, readers) looks
at the file's identity before each use of a key and reloads it when it was replaced, so an
erasure reaches them the moment it returns: a key cached before is never used after.

Destroying a namespace's keys makes every payload sealed with them unreadable for
good: this is how an immutable log forgets a data subject. A process that seals derived events
holds `sealing()` (a shared flock on `keyring.lock`) from the seal until they are appended, and
`destroy` takes it exclusively: an event sealed with a key is never appended after the key's
destruction returned, whichever process sealed it. Destroyed keys are remembered by id
(never by value) so that reads can say "erased" rather than "corrupt".

A namespace's name is a user's identifier (a user id on the mem0 routes): the log never
writes it. Events carry an opaque namespace id (`~` and 16 hex digits, not a valid name), and
the name-to-id map lives here only, beside the keys, and loses the name when they are
destroyed. Key ids are made from the opaque id. (A keyring written before this kept no map:
its namespaces are their own ids, as their events already say.)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hmac
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mnemoflow.eventlog.atomic import write_atomic
from mnemoflow.eventlog.errors import KeyErased, KeyringError, NamespaceNotFound

_NONCE = 12


@dataclass(frozen=True, slots=True)
class Destroyed:
    key_id: str
    namespace: str
    destroyed_at: str
    logged: bool  # has its subject.erased event been appended?


class Keyring:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._local = threading.local()  # .pinned: inside `pinned()` on this thread
        self._keys: dict[str, tuple[str, bytes]] = {}  # key id -> (namespace id, key)
        self._ids: dict[str, str] = {}  # namespace name -> its id in the log
        self._names: dict[str, str] = {}  # namespace id -> its name
        self._active: dict[str, str] = {}  # namespace id -> key id in use
        self._generations: dict[str, int] = {}
        self._destroyed: dict[str, Destroyed] = {}
        self._ciphers: dict[str, AESGCM] = {}  # key id -> its cipher (key schedule made once)
        self._seen: tuple[int, int, int] | None = None  # the file as last loaded or saved
        self._lock_path = path.with_suffix(".lock")
        self._sealers = 0  # threads of this process inside `sealing()`
        self._sealers_cond = threading.Condition()
        self._sealing_fd = -1
        if path.exists():
            self._load()

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise KeyringError(f"keyring {self._path} cannot be read: {exc}") from exc
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    @contextlib.contextmanager
    def pinned(self) -> Iterator[None]:
        """One look at the file for a run of calls on this thread (a batch of stores), not one
        per key use: for the log's writer, the only process that destroys keys, whose own
        erasures cannot interleave with the run (see `InputLog`'s erasure lock)."""
        with self._lock:
            self._refresh(force=True)
        depth = self._depth()
        self._local.pinned = depth + 1
        try:
            yield
        finally:
            self._local.pinned = depth

    @contextlib.contextmanager
    def sealing(self) -> Iterator[None]:
        """Held from sealing derived events until they are appended (see the module's note).

        One shared flock per process, counted across its threads (a flock belongs to the open
        file, so one thread's unlock would release every thread's hold)."""
        with self._sealers_cond:
            if self._sealers == 0:
                if self._sealing_fd < 0:
                    self._sealing_fd = _open_lock(self._lock_path)
                fcntl.flock(self._sealing_fd, fcntl.LOCK_SH)
            self._sealers += 1
        try:
            yield
        finally:
            with self._sealers_cond:
                self._sealers -= 1
                if self._sealers == 0:
                    fcntl.flock(self._sealing_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Let go of the lock file (the keyring stays usable: it is reopened when needed)."""
        with self._sealers_cond:
            if self._sealing_fd >= 0 and self._sealers == 0:
                os.close(self._sealing_fd)
                self._sealing_fd = -1

    @contextlib.contextmanager
    def _destroying(self) -> Iterator[None]:
        """The exclusive side of `sealing()`: waits for every append under way, in every
        process (this one's too: its own open file, so its flock conflicts with theirs)."""
        fd = _open_lock(self._lock_path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the flock

    def _depth(self) -> int:
        depth: int = getattr(self._local, "pinned", 0)
        return depth

    def _refresh(self, *, force: bool = False) -> None:
        """Reload if another process replaced the file since (caller holds the lock)."""
        if not force and self._depth() > 0:
            return
        if self._identity() != self._seen:
            self._keys.clear()
            self._ids.clear()
            self._names.clear()
            self._destroyed.clear()
            self._ciphers.clear()
            self._active.clear()
            self._generations.clear()
            self._load()

    def _load(self) -> None:
        self._seen = self._identity()  # before reading: a change after it is seen next time
        try:
            doc = json.loads(self._path.read_text("utf-8"))
            for key_id, entry in doc["keys"].items():
                self._keys[key_id] = (entry["namespace"], base64.b64decode(entry["key"]))
            for key_id, entry in doc["destroyed"].items():
                self._destroyed[key_id] = Destroyed(key_id, **entry)
            self._active = dict(doc["active"])
            self._generations = {k: int(v) for k, v in doc["generations"].items()}
            legacy = {ns: ns for ns, _ in self._keys.values()}  # written before the map
            self._ids = dict(doc["ids"]) if "ids" in doc else legacy
            self._names = {v: k for k, v in self._ids.items()}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyringError(f"keyring {self._path} is unreadable: {exc}") from exc

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """A change that counts only once saved: if the file cannot be written (a full disk),
        this process's view is put back as the file still has it. A key the file lacks must
        never seal an acknowledged event, nor a destruction the file lacks be believed."""
        keys, ids, names = dict(self._keys), dict(self._ids), dict(self._names)
        active, generations, destroyed = (
            dict(self._active),
            dict(self._generations),
            dict(self._destroyed),
        )
        try:
            yield
            self._save()
        except BaseException:
            self._keys, self._ids, self._names = keys, ids, names
            self._active, self._generations, self._destroyed = active, generations, destroyed
            raise

    def _save(self) -> None:
        write_document(self._path, self._document())
        self._seen = self._identity()

    def document(self) -> dict[str, Any]:
        """The keyring as its file holds it, keys in clear (what a backup copies)."""
        with self._lock:
            self._refresh()
            return self._document()

    def escrow(self, key_id: str) -> bytes | None:
        """A 256-bit key derived from a live key, to seal a backup's copy of its namespace's
        keys: gone when the key is destroyed (None: destroyed or unknown)."""
        with self._lock:
            self._refresh()
            entry = self._keys.get(key_id)
        if entry is None:
            return None
        return hmac.new(entry[1], b"mnemoflow.backup-escrow", "sha256").digest()

    def _document(self) -> dict[str, Any]:
        return {
            "version": 1,
            "keys": {
                k: {"namespace": ns, "key": base64.b64encode(key).decode()}
                for k, (ns, key) in self._keys.items()
            },
            "ids": self._ids,
            "active": self._active,
            "generations": self._generations,
            "destroyed": {
                k: {"namespace": d.namespace, "destroyed_at": d.destroyed_at, "logged": d.logged}
                for k, d in self._destroyed.items()
            },
        }

    def namespace_id(self, name: str, *, create: bool = False) -> str | None:
        """The id events of the named namespace carry; with `create`, made (with its first
        key, durably saved) when the name is new. None: no such namespace (or erased)."""
        with self._lock:
            self._refresh()
            found = self._ids.get(name)
            if found is None and create:
                found = "~" + secrets.token_hex(8)
                with self._changing():
                    self._ids[name], self._names[found] = found, name
                    self._new_key(found)
            return found

    def name_of(self, namespace_id: str) -> str | None:
        """The name behind a namespace id (None once erased, or not a namespace's id)."""
        with self._lock:
            self._refresh()
            return self._names.get(namespace_id)

    def key_for(self, namespace: str) -> str:
        """The id of the key in use for a namespace id, made (and durably saved) on first use."""
        with self._lock:
            key_id = self._active.get(namespace)
            if key_id is None:
                with self._changing():
                    key_id = self._new_key(namespace)
            return key_id

    def keyed_digest(self, namespace: str, material: str) -> str:
        """32 hex digits of an HMAC of `material` under the key in use for a namespace id: the
        same while that key lives, and linked to nothing once it is destroyed (an id a caller
        chose, which may name a file, a chat or a person, must not outlive the namespace's
        erasure). NamespaceNotFound if it has no key in use (erased)."""
        with self._lock:
            self._refresh()
            key_id = self._active.get(namespace)
            if key_id is None:
                raise NamespaceNotFound(f"namespace {namespace} has no key in use (erased)")
            key = self._keys[key_id][1]
        mac = hmac.new(key, b"mnemoflow.event-id\x00" + material.encode(), "sha256")
        return mac.hexdigest()[:32]

    def _new_key(self, namespace: str) -> str:
        generation = self._generations.get(namespace, 0) + 1
        key_id = f"{namespace}#{generation}"
        self._keys[key_id] = (namespace, AESGCM.generate_key(bit_length=256))
        self._active[namespace] = key_id
        self._generations[namespace] = generation
        return key_id

    def _cipher(self, key_id: str) -> AESGCM | None:
        """The key's cipher as the file says now (None: destroyed or unknown)."""
        with self._lock:
            self._refresh()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                entry = self._keys.get(key_id)
                if entry is None:
                    return None
                cipher = self._ciphers[key_id] = AESGCM(entry[1])
            return cipher

    def seal(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        cipher = self._cipher(key_id)
        if cipher is None:
            if key_id in self._destroyed:
                raise KeyErased(f"key {key_id!r} was destroyed: its namespace is erased")
            raise KeyringError(f"no key {key_id!r} in {self._path}")
        nonce = secrets.token_bytes(_NONCE)
        return nonce + cipher.encrypt(nonce, plaintext, aad)

    def open(self, key_id: str, sealed: bytes, aad: bytes) -> bytes | None:
        """The plaintext, or None when the key was destroyed."""
        cipher = self._cipher(key_id)
        if cipher is None:
            if key_id in self._destroyed:
                return None
            raise KeyringError(f"no key {key_id!r} in {self._path}")
        try:
            return cipher.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag as exc:
            raise KeyringError(f"payload sealed with {key_id!r} fails authentication") from exc

    def is_destroyed(self, key_id: str) -> bool:
        with self._lock:
            self._refresh()
            return key_id in self._destroyed

    def names(self) -> set[str]:
        """The names of the namespaces with live keys."""
        with self._lock:
            self._refresh()
            return set(self._ids)

    def destroy(self, name: str) -> list[str]:
        """Destroy every key of the named namespace and forget its name; return the key ids
        (empty if none was live). What remains names the namespace by its id only."""
        with self._destroying(), self._lock:
            self._refresh()
            namespace = self._ids.get(name)
            if namespace is None:
                return []
            doomed = [k for k, (ns, _) in self._keys.items() if ns == namespace]
            now = datetime.now(UTC).isoformat()
            with self._changing():
                del self._ids[name]
                self._names.pop(namespace, None)
                for key_id in doomed:
                    del self._keys[key_id]
                    self._destroyed[key_id] = Destroyed(key_id, namespace, now, logged=False)
                self._active.pop(namespace, None)
            for key_id in doomed:  # the file no longer holds them: nor may this process
                self._ciphers.pop(key_id, None)
            return doomed

    def unlogged(self) -> list[Destroyed]:
        with self._lock:
            return [d for d in self._destroyed.values() if not d.logged]

    def mark_logged(self, key_ids: list[str]) -> None:
        with self._lock, self._changing():
            for key_id in key_ids:
                d = self._destroyed[key_id]
                self._destroyed[key_id] = Destroyed(d.key_id, d.namespace, d.destroyed_at, True)


def write_document(path: Path, doc: dict[str, Any]) -> None:
    """Replace a keyring file with `doc` (as `Keyring.document` gives it), mode 0600."""
    write_atomic(path, json.dumps(doc, indent=1).encode(), mode=0o600)


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise KeyringError(f"keyring lock {path} cannot be opened: {exc}") from exc
