"""Another process's keyring notices an erasure: once `erase` has returned, a process that
had already used the namespace's key (a deriving actor, say) can neither open nor seal with
it. It cached the key before, and went on decrypting."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from eventlog import EventLog, InputLog

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from eventlog import EventLog
    from eventlog.derived import MemoryExtracted
    from eventlog.errors import KeyErased

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
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(directory)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
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
