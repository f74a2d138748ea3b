"""Backup and restore of a data directory, while a service writes it (see
`mnemoflow.eventlog.backup` for how the copy stays consistent without stopping anyone).

A backup holds the log (every stream, the keyring, the heads' key) and the API keys; the
projections are not copied: a restore rebuilds them by replay. Sealed, it holds no key in
clear and no API keys: it is restored beside the live data directory, which lends the keys of
the namespaces it still holds, and its API keys as they are now.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from mnemoflow.eventlog.backup import BackupError, BackupReport, backup_log, restore_log
from mnemoflow.eventlog.keyring import Keyring
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.api.topology import DEFAULT_TOPOLOGY

KEYS_FILE = "keys.json"


def backup(settings: Settings, into: Path, *, sealed: bool = False) -> BackupReport:
    """A consistent copy of `settings.home` in the new directory `into`."""
    downstream_first = [node.output for node in reversed(DEFAULT_TOPOLOGY.nodes)]
    extras = {} if sealed else {KEYS_FILE: settings.home / KEYS_FILE}
    return backup_log(settings.home / "log", into, downstream_first, sealed=sealed, extras=extras)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    files: int
    events: dict[str, int]  # by stream
    verified: int  # events whose chain verify checked
    namespaces: int
    erased_since: int  # namespaces a sealed backup held that the live log has erased since
    seconds: float


def restore(source: Path, settings: Settings, *, unseal_with: Path | None = None) -> RestoreReport:
    """Restore the backup `source` into the new data directory `settings.home`: the files
    checked against the manifest, the log opened (a torn tail cut, erasures owed logged),
    verified, and the actors and projections caught up. `unseal_with`: the live data
    directory that lends a sealed backup its keys and API keys."""
    began = time.perf_counter()
    home = settings.home
    live = None
    if unseal_with is not None:
        ring = Path(unseal_with) / "log" / "keyring.json"
        if not ring.exists():
            raise BackupError(f"{unseal_with} holds no keyring: not a data directory")
        live = Keyring(ring)
    if home.exists() and (not home.is_dir() or any(home.iterdir())):
        raise BackupError(f"{home} exists and is not an empty directory")
    try:  # from here on, `home` is this restore's own
        manifest = restore_log(source, home, live)
        if manifest["sealed"] and unseal_with is not None:
            keys = Path(unseal_with) / KEYS_FILE
            if keys.exists():
                shutil.copy2(keys, home / KEYS_FILE)
        owed = Keyring(home / "log" / "keyring.json").unlogged()
        erased_since = len({d.namespace for d in owed})
        with Memory(settings, actor="restore") as mem:
            report = mem.verify()
            lost = [(s.stream, x.first, x.last) for s in report.streams for x in s.lost]
            if not report.ok or lost:
                raise BackupError(f"the restored log does not verify whole: {report}")
            mem.sync()
            events = {name: mem.log.stream(name).last_position for name in mem.log.stream_names()}
            namespaces = len(mem.namespaces())
    except BaseException:
        shutil.rmtree(home, ignore_errors=True)  # half a restore is no data directory
        raise
    return RestoreReport(
        files=len(manifest["files"]),
        events=events,
        verified=report.checked,
        namespaces=namespaces,
        erased_since=erased_since,
        seconds=round(time.perf_counter() - began, 3),
    )
