"""Another process's keyring notices an erasure: once `erase` has returned, a process that
had already used the namespace's key (a deriving actor, say) can neither open nor seal with
it. It cached the key before, and went on decrypting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from mnemoflow.eventlog import EventLog, InputLog

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from mnemoflow.eventlog import EventLog
    from mnemoflow.eventlog.derived import MemoryExtracted
    from mnemoflow.eventlog.errors import KeyErased

    log = EventLog(Path(sys.argv[1]), writable=False, writes={"extracted"})
    (record,) = list(log.input.read())
    print("opened" if log.open_payload(record) is not None else "none", flush=True)
    sys.stdin.readline()  # the parent erases the namespace now
    print("opened" if log.open_payload(record) is not None else "erased", flush=True)
    try:
        log.seal("memory.extracted", record.namespace, "x", MemoryExtracted(extractor="rules"),
                 key_id=record.key_id)
        print("sealed", flush=True)
    except KeyErased:
        print("refused", flush=True)
    """
)


def test_a_key_erased_in_one_process_is_gone_in_another(tmp_path: Path) -> None:
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        inputs = InputLog(log)
        inputs.store("Alice's locker code is 4471.", "alice")
        child = _child(CHILD, directory)
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "opened"  # the child holds the key now
        inputs.erase("alice")
        child.stdin.write("go\n")
        child.stdin.flush()
        after = [child.stdout.readline().strip(), child.stdout.readline().strip()]
        child.stdin.close()
        child.stdout.close()
        assert child.wait(60) == 0
    assert after == ["erased", "refused"]


SEALER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from mnemoflow.eventlog import EventLog
    from mnemoflow.eventlog.derived import MemoryExtracted
    from mnemoflow.eventlog.errors import KeyErased
    from mnemoflow.eventlog.schema import MEMORY_EXTRACTED, Causation, Draft

    log = EventLog(Path(sys.argv[1]), writable=False, writes={"extracted"})
    (record,) = list(log.input.read())
    out = log.stream("extracted")

    def seal(event_id):
        return log.seal(MEMORY_EXTRACTED, record.namespace, event_id,
                        MemoryExtracted(extractor="rules"), key_id=record.key_id)

    with log.keyring.sealing():
        key_id, sealed = seal("x:1")
        print("sealed", flush=True)
        sys.stdin.readline()  # the parent has begun erasing the namespace
        out.append([Draft(event_id="x:1", kind=MEMORY_EXTRACTED, namespace=record.namespace,
                          payload=sealed, actor="extractor", memory_id=record.memory_id,
                          causation=Causation("input", record.position), key_id=key_id)])
        print(f"appended {time.time()}", flush=True)
    sys.stdin.readline()
    with log.keyring.sealing():
        try:
            seal("x:2")
            print("sealed", flush=True)
        except KeyErased:
            print("refused", flush=True)
    log.close()
    """
)


def test_an_erasure_waits_for_a_derived_event_sealed_before_it(tmp_path: Path) -> None:
    """A deriving process sealed an event with the namespace's key, then the owner erases:
    the erasure returns only once that event is appended, and no seal after it succeeds. It
    returned at once, and the event sealed before was appended after the erasure."""
    directory = tmp_path / "log"
    with EventLog(directory) as log:
        inputs = InputLog(log)
        inputs.store("Alice's locker code is 4471.", "alice")
        child = _child(SEALER, directory)
        assert child.stdin is not None and child.stdout is not None
        assert child.stdout.readline().strip() == "sealed"
        erased_at: list[float] = []

        def erase() -> None:
            inputs.erase("alice")
            erased_at.append(time.time())

        erasing = threading.Thread(target=erase)
        erasing.start()
        erasing.join(0.5)
        assert erasing.is_alive()  # held back by the append under way
        child.stdin.write("go\n")
        child.stdin.flush()
        word, appended_at = child.stdout.readline().split()
        erasing.join(60)
        assert not erasing.is_alive() and word == "appended"
        assert erased_at[0] >= float(appended_at)
        child.stdin.write("go\n")
        child.stdin.flush()
        after = child.stdout.readline().strip()
        child.stdin.close()
        child.stdout.close()
        assert child.wait(60) == 0
        assert after == "refused"
        (derived,) = list(log.stream("extracted").read())
        assert log.open_payload(derived) is None  # in before the erasure, and erased with it


def _child(script: str, directory: Path) -> subprocess.Popen[str]:
    """A second process running `script` on the log, spoken to line by line."""
    return subprocess.Popen(
        [sys.executable, "-c", script, str(directory)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
