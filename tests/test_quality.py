"""The code stays lint-clean (ruff) and fully typed (mypy --strict on the packages)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("eventlog", "projections", "actors", "pipeline")  # bottom first


def test_ruff_is_clean() -> None:
    process = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert process.returncode == 0, process.stdout + process.stderr


def package_tree(into: Path) -> Path:
    """The installed shape of the source tree, as links: `mnemoflow/` holding the front door and
    the four packages. mypy reads this (an editable install maps the packages with an import
    hook, which mypy cannot follow)."""
    tree = into / "mnemoflow"
    tree.mkdir()
    (tree / "__init__.py").symlink_to(ROOT / "pipeline" / "front" / "__init__.py")
    for package in LAYERS:
        (tree / package).symlink_to(ROOT / package, target_is_directory=True)
    return into


def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    process = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", "mnemoflow"],
        cwd=ROOT,
        env={**os.environ, "MYPYPATH": str(package_tree(tmp_path))},
        capture_output=True,
        text=True,
    )
    assert process.returncode == 0, process.stdout + process.stderr


def _imported(path: Path) -> set[str]:
    """The modules a file imports (absolute names; the code has no relative imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.relative_to(ROOT)}: a relative import"
            names.add(node.module or "")
    return names


def _sources(*folders: str) -> list[Path]:
    return [p for folder in folders for p in sorted((ROOT / folder).rglob("*.py"))]


def test_every_import_is_under_the_namespace() -> None:
    """Our packages are imported as `mnemoflow.<package>` only: a bare `import pipeline` would
    load a second copy of the code, or a user's own `pipeline` package."""
    for path in _sources(*LAYERS, "tests"):
        for name in _imported(path):
            top = name.partition(".")[0]
            assert top not in LAYERS, f"{path.relative_to(ROOT)} imports {name} (bare)"
            assert not name.startswith("mnemoflow.pipeline.front"), (
                f"{path.relative_to(ROOT)} imports the front door by its folder: use mnemoflow"
            )


def test_imports_flow_one_way() -> None:
    """eventlog <- projections <- actors <- pipeline: nothing imports from a layer above it."""
    for i, package in enumerate(LAYERS):
        above = tuple(f"mnemoflow.{name}" for name in LAYERS[i + 1 :])
        front = package != "pipeline"  # the front door re-exports the pipeline's parts
        for path in _sources(package):
            for name in _imported(path):
                assert not name.startswith(above) and not (front and name == "mnemoflow"), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )
    for path in _sources("actors"):
        if path.parent.name != "query":  # the deriving actors do not know the query actor
            for name in _imported(path):
                assert not name.startswith("mnemoflow.actors.query"), f"{path} imports {name}"
    for path in (ROOT / "eventlog").rglob("*.py"):
        text = path.read_text()
        for foreign in ("ray", "duckdb", "faiss"):
            assert f"import {foreign}" not in text, f"{path} imports {foreign}"


# The pipeline's rooms, bottom first: a room imports only rooms of a lower rank (or itself).
PIPELINE_ROOMS = {
    "api": 0,
    "service": 1,
    "http": 2,
    "ingest": 2,
    "mcp_server": 2,
    "bench": 3,  # imported by nothing but the CLI
    "cli": 4,
}


def _room(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["mnemoflow", "pipeline"] or len(parts) < 3:
        return None
    assert parts[2] in PIPELINE_ROOMS, f"{module}: a pipeline module in no room"
    return parts[2]


def test_the_pipeline_rooms_import_downwards() -> None:
    rooms = {
        path.relative_to(ROOT / "pipeline").parts[0].removesuffix(".py")
        for path in _sources("pipeline")
    }
    assert rooms - {"__init__", "front"} == set(PIPELINE_ROOMS)
    for path in _sources("pipeline"):
        here = path.relative_to(ROOT / "pipeline").parts[0].removesuffix(".py")
        if here in {"__init__", "front"}:
            continue
        for name in _imported(path):
            there = _room(name)
            if there is not None and there != here:
                assert PIPELINE_ROOMS[there] < PIPELINE_ROOMS[here], (
                    f"{path.relative_to(ROOT)} ({here}) imports {name} ({there})"
                )


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_every_dependency_is_locked() -> None:
    """constraints.txt pins every dependency of the package and its test extra to one version,
    so a fresh install (the README's commands, .ci/run) resolves what CI last passed with."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_name(r) for r in project["dependencies"] + [r for x in extras.values() for r in x]}
    locked = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not pinned with =="
            locked[_name(name)] = version
    assert wanted <= set(locked), f"not locked: {sorted(wanted - set(locked))}"
    for script in (ROOT / ".ci" / "run", ROOT / "README.md"):
        assert "-c constraints.txt" in script.read_text(), f"{script.name} ignores the lock"
