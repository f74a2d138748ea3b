"""The code stays lint-clean (ruff) and fully typed (mypy --strict on the packages)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert process.returncode == 0, process.stdout + process.stderr


def test_mypy_strict_is_clean() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True
    )
    assert process.returncode == 0, process.stdout + process.stderr


def test_imports_flow_one_way() -> None:
    """eventlog <- projections <- actors <- pipeline: nothing imports from a layer above it."""
    layers = ["eventlog", "projections", "actors", "pipeline"]
    for i, package in enumerate(layers):
        above = layers[i + 1 :]
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            for name in above:
                assert f"from {name}" not in text and f"import {name}" not in text, (
                    f"{path.relative_to(ROOT)} imports {name}"
                )
    for path in (ROOT / "eventlog").rglob("*.py"):
        text = path.read_text()
        for foreign in ("ray", "duckdb", "faiss"):
            assert f"import {foreign}" not in text, f"{path} imports {foreign}"
