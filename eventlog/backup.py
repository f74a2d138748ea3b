"""A consistent copy of a log while its writers go on, and its restore.

Nothing is locked and no writer waits: the copy leans on how the log writes. A stream's
signed head is written after each durable append and never leads the log, and its segments
only grow at the end or are replaced whole (a seal compacts by rename). So for each stream
the head is copied first, then its segments: they hold at least every event the head names,
and what was half-written at the end when it was read is a torn tail that opening the
restored log cuts back. Streams are copied downstream first and the input last: a derived
event in the copy never names an input the copy lacks. The keyring is copied after the
input, so every key the copied events were sealed with is in it, unless an erasure destroyed
it meanwhile, which the restored log then records. Every generation of a derived stream is
copied (see eventlog.generations), after the layout that names them. The manifest, written
last, names every file with its size and SHA-256: a backup without one is unfinished, and a
file that differs from it is refused at restore.

A backup holds the namespaces' data keys as they were: an erasure in the live log cannot
destroy them there. Sealed (`sealed=True`), the backup keeps each namespace's keys (and name)
encrypted under a key derived from that namespace's live key (`Keyring.escrow`), so it can be
restored only beside the live keyring, and a namespace erased in the live log since is
unreadable in the restored copy as well.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mnemoflow.eventlog.atomic import write_atomic, write_atomic_from
from mnemoflow.eventlog.errors import LogError
from mnemoflow.eventlog.generations import GENERATIONS_DIR, LAYOUT_FILE
from mnemoflow.eventlog.heads import HEAD_FILE, KEY_FILE
from mnemoflow.eventlog.keyring import Keyring, write_document
from mnemoflow.eventlog.schema import INPUT_STREAM
from mnemoflow.eventlog.segments import SEGMENT_SUFFIX

FORMAT = "mnemoflow.backup"
VERSION = 1
MANIFEST = "backup.json"
KEYRING = "keyring.json"
SEALED_KEYRING = "keyring.sealed.json"
_CHUNK = 1 << 20
_AAD = b"mnemoflow.backup\x00"


class BackupError(LogError):
    """A backup cannot be made or restored; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class BackupReport:
    files: int
    bytes: int
    seconds: float
    sealed: bool


def backup_log(
    log_dir: Path,
    into: Path,
    downstream_first: Sequence[str],
    *,
    sealed: bool = False,
    extras: Mapping[str, Path] | None = None,
) -> BackupReport:
    """Copy the log at `log_dir` into the new directory `into` (under `log/`), its streams
    in the order given (any stream not named goes first, the input last), and `extras` (a
    name in the backup -> a file, copied if it exists: the API keys)."""
    began = time.perf_counter()
    _new_directory(into)
    files: dict[str, dict[str, Any]] = {}
    if (log_dir / LAYOUT_FILE).exists():  # first: it names generations copied after it
        files[f"log/{LAYOUT_FILE}"] = _copy(log_dir / LAYOUT_FILE, into / "log")
    # every generation of each stream: `streams/NAME` and `generations/G/NAME`
    versions: dict[str, list[Path]] = {}
    for root in [log_dir / "streams", *sorted((log_dir / GENERATIONS_DIR).glob("*"))]:
        for directory in sorted(root.iterdir()) if root.is_dir() else []:
            versions.setdefault(directory.name, []).append(directory)
    named = [s for s in downstream_first if s != INPUT_STREAM]
    others = sorted(s for s in versions if s not in named and s != INPUT_STREAM)
    for name in [*others, *named, INPUT_STREAM]:
        for source in versions.get(name, []):
            where = source.relative_to(log_dir)
            for path in _stream_files(source):
                files[f"log/{where}/{path.name}"] = _copy(path, into / "log" / where)
    if (log_dir / KEY_FILE).exists():
        files[f"log/{KEY_FILE}"] = _copy(log_dir / KEY_FILE, into / "log")
    keyring = Keyring(log_dir / KEYRING)
    doc = keyring.document()
    kept = SEALED_KEYRING if sealed else KEYRING
    raw = json.dumps(_seal(doc, keyring) if sealed else doc, indent=1).encode()
    write_atomic(into / "log" / kept, raw, mode=0o600)
    files[f"log/{kept}"] = {"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()}
    for name, path in (extras or {}).items():
        if path.exists():
            files[name] = _copy(path, into, name)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "sealed": sealed,
        "files": files,
    }
    write_atomic(into / MANIFEST, json.dumps(manifest, indent=1).encode(), mode=0o600)
    return BackupReport(
        files=len(files),
        bytes=sum(f["bytes"] for f in files.values()),
        seconds=round(time.perf_counter() - began, 3),
        sealed=sealed,
    )


def _new_directory(path: Path) -> None:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise BackupError(f"{path} exists and is not an empty directory")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise BackupError(f"cannot create {path}: {exc}") from exc


def _stream_files(directory: Path) -> list[Path]:
    """The head first, then the segments as they are after it was read."""
    head = directory / HEAD_FILE
    segments = sorted(directory.glob(f"*{SEGMENT_SUFFIX}"))
    return ([head] if head.exists() else []) + segments


def _copy(source: Path, directory: Path, name: str | None = None) -> dict[str, Any]:
    """Copy a file into `directory` as it is when opened (a file replaced meanwhile is read
    whole as it was); its size and digest."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0

    def chunks(fd: int) -> Iterator[bytes]:
        nonlocal size
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
            size += len(chunk)
            yield chunk

    try:
        fd = os.open(source, os.O_RDONLY)
        try:
            write_atomic_from(directory / (name or source.name), chunks(fd), mode=0o600)
        finally:
            os.close(fd)
    except OSError as exc:
        raise BackupError(f"cannot copy {source}: {exc}") from exc
    return {"bytes": size, "sha256": digest.hexdigest()}


# -- sealing the keyring -----------------------------------------------------------------


def _seal(doc: dict[str, Any], keyring: Keyring) -> dict[str, Any]:
    """The keyring with each namespace's keys and name in a box only that namespace's live
    key opens (see `Keyring.escrow`); what stays in clear names no one."""
    by_namespace: dict[str, dict[str, str]] = {}
    for key_id, entry in doc["keys"].items():
        by_namespace.setdefault(entry["namespace"], {})[key_id] = entry["key"]
    names = {namespace: name for name, namespace in doc.get("ids", {}).items()}
    boxes = {}
    for namespace, keys in by_namespace.items():
        escrow_id = doc["active"].get(namespace) or min(keys)
        escrow = keyring.escrow(escrow_id)
        if escrow is None:  # destroyed since the document was read: erased, nothing to keep
            continue
        plain = json.dumps({"name": names.get(namespace), "keys": keys}).encode()
        nonce = secrets.token_bytes(12)
        box = nonce + AESGCM(escrow).encrypt(nonce, plain, _AAD + namespace.encode())
        boxes[namespace] = {
            "escrow": escrow_id,
            "key_ids": sorted(keys),
            "active": doc["active"].get(namespace),
            "box": base64.b64encode(box).decode(),
        }
    return {
        "version": 1,
        "sealed": True,
        "named": "ids" in doc,
        "namespaces": boxes,
        "generations": doc["generations"],
        "destroyed": doc["destroyed"],
    }


def _unseal(sealed: dict[str, Any], live: Keyring) -> dict[str, Any]:
    """The keyring document back, with the keys of each namespace the live keyring still
    holds; a namespace erased there since has its keys recorded destroyed (not yet logged:
    opening the restored log appends its erasure)."""
    doc: dict[str, Any] = {
        "version": 1,
        "keys": {},
        "active": {},
        "generations": dict(sealed["generations"]),
        "destroyed": dict(sealed["destroyed"]),
    }
    ids: dict[str, str] = {}
    now = datetime.now(UTC).isoformat()
    for namespace, entry in sealed["namespaces"].items():
        escrow = live.escrow(entry["escrow"])
        if escrow is None:
            for key_id in entry["key_ids"]:
                doc["destroyed"][key_id] = {
                    "namespace": namespace,
                    "destroyed_at": now,
                    "logged": False,
                }
            continue
        box = base64.b64decode(entry["box"])
        try:
            plain = AESGCM(escrow).decrypt(box[:12], box[12:], _AAD + namespace.encode())
        except InvalidTag as exc:
            raise BackupError(f"the sealed keys of namespace {namespace} fail to open") from exc
        opened = json.loads(plain)
        for key_id, key in opened["keys"].items():
            doc["keys"][key_id] = {"namespace": namespace, "key": key}
        if entry["active"] is not None:
            doc["active"][namespace] = entry["active"]
        if opened["name"] is not None:
            ids[opened["name"]] = namespace
    if sealed.get("named", True):
        doc["ids"] = ids
    return doc


# -- restore -----------------------------------------------------------------------------


def read_manifest(backup: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((backup / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{backup} holds no {MANIFEST}: not a backup, or an unfinished one"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup / MANIFEST} cannot be read: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{backup / MANIFEST} is not a mnemoflow backup's manifest")
    if not isinstance(manifest.get("version"), int) or manifest["version"] > VERSION:
        raise BackupError(
            f"backup version {manifest.get('version')!r} is not one this mnemoflow reads"
        )
    return manifest


def check_backup(backup: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest names is there, whole, with its digest."""
    for name, expected in manifest["files"].items():
        path = backup / name
        digest = hashlib.sha256()
        try:
            with path.open("rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
        except OSError as exc:
            raise BackupError(f"backup file {name} cannot be read: {exc}") from exc
        if digest.hexdigest() != expected["sha256"]:
            raise BackupError(f"backup file {name} differs from the manifest (damaged)")


def restore_log(backup: Path, home: Path, live: Keyring | None = None) -> dict[str, Any]:
    """Check the backup whole, then copy it into the new data directory `home` (the log, and
    the extras beside it); a sealed backup's keys are opened with the `live` keyring."""
    manifest = read_manifest(backup)
    check_backup(backup, manifest)
    if manifest["sealed"] and live is None:
        raise BackupError(
            "this backup's keys are sealed: restore it beside the live data directory "
            "(--unseal-with LIVE_HOME)"
        )
    _new_directory(home)
    for name in manifest["files"]:
        source = backup / name
        if name == f"log/{SEALED_KEYRING}":
            assert live is not None
            sealed = json.loads(source.read_text("utf-8"))
            (home / "log").mkdir(parents=True, exist_ok=True, mode=0o700)
            write_document(home / "log" / KEYRING, _unseal(sealed, live))
            continue
        target = home / name
        _copy(source, target.parent, target.name)
    return manifest
