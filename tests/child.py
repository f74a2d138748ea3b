"""Python code run in a child interpreter: for what only a fresh process shows (what it
imports, what it finds installed)."""

from __future__ import annotations

import subprocess
import sys


def python_says(code: str) -> str:
    """What `code` prints in a fresh interpreter; it must exit 0."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout
