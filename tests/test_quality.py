"""The code stays lint-clean (ruff) and fully typed (mypy --strict on the packages)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
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


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_is_locked() -> None:
    """constraints.txt pins every dependency of the package and its test extra to one version,
    so a fresh install (the README's commands, .ci/run) resolves what CI last passed with."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]}
    locked = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            locked[_name(name)] = version
    assert wanted <= set(locked), f"not locked: {sorted(wanted - set(locked))}"
    for script in (ROOT / ".ci" / "run", ROOT / "README.md"):
        assert "-c constraints.txt" in script.read_text(), f"{script.name} ignores the lock"
