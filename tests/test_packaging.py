"""The distribution installs one namespace, `mnemoflow`: the built wheel holds every source file
under it and nothing beside it, and works in a fresh virtual environment next to a user's own
`pipeline` package (theirs still imports; ours is `mnemoflow.pipeline`)."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.test_quality import LAYERS, ROOT

pytestmark = pytest.mark.slow

SHIPPED = {".py", ".sql", ".toml"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (built,) = out.glob("mnemoflow-*.whl")
    return built


def _installed_name(path: Path) -> str:
    """Where a source file lands in the wheel."""
    relative = path.relative_to(ROOT)
    if relative.parent == Path("pipeline", "front"):
        return f"mnemoflow/{relative.name}"
    return f"mnemoflow/{relative.as_posix()}"


def test_the_wheel_holds_every_source_file_under_mnemoflow(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        _installed_name(path)
        for folder in (*LAYERS, "configs")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in SHIPPED and "__pycache__" not in path.parts
    }
    assert expected - names == set(), "missing from the wheel"
    assert "mnemoflow/__init__.py" in names and "mnemoflow/configs/default.toml" in names
    models = "mnemoflow/actors/models/all-MiniLM-L6-v2"
    assert {f"{models}/{n}" for n in ("tokenizer.json", "LICENSE", "NOTICE.md")} <= names
    static = ROOT / "pipeline" / "http" / "ui" / "static"  # the dashboard's, vendored included
    shipped = {
        f"mnemoflow/pipeline/http/ui/static/{p.relative_to(static).as_posix()}"
        for p in static.rglob("*")
        if p.is_file()
    }
    assert shipped and shipped - names == set(), "the dashboard's files are missing"
    assert "mnemoflow/pipeline/http/ui/static/vendor/cytoscape.LICENSE" in shipped
    assert not any(name.startswith("mnemoflow/pipeline/front/") for name in names)
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"mnemoflow"}


CHECK = """
import sys
import pipeline
assert pipeline.WHOSE == "theirs", pipeline.__file__
from mnemoflow import Memory, MnemoError
import mnemoflow.pipeline
assert "site-packages" in mnemoflow.pipeline.__file__, mnemoflow.pipeline.__file__
with Memory.open(sys.argv[1]) as mem:
    r = mem.store("Alice moved to Lyon last spring.", namespace="alice")
    hits = mem.recall("where does Alice live?", "alice", min_position=r.position)
    print(hits[0].text)
import pipeline
assert pipeline.WHOSE == "theirs"
assert sys.modules["pipeline"] is not mnemoflow.pipeline
"""


def test_the_wheel_works_beside_a_package_named_pipeline(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", wheel],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    # The dependencies come from this environment's site-packages, added as plain paths: a
    # .pth there (the editable install's import hook for this checkout) is not run.
    (purelib,) = venv.glob("lib/python*/site-packages")
    (purelib / "dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    theirs = tmp_path / "project"
    (theirs / "pipeline").mkdir(parents=True)
    (theirs / "pipeline" / "__init__.py").write_text('WHOSE = "theirs"\n')
    (theirs / "eventlog.py").write_text('WHOSE = "theirs"\n')
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}

    def run(*command: str | Path) -> str:
        done = subprocess.run(
            [str(c) for c in command], cwd=theirs, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    assert "Lyon" in run(python, "-c", CHECK, tmp_path / "library-home")
    mnemo = venv / "bin" / "mnemo"
    assert run(mnemo, "--version").startswith("mnemo ")
    home = tmp_path / "cli-home"
    run(mnemo, "store", "Bob is allergic to peanuts.", "--ns", "bob", "--home", home)
    assert "peanuts" in run(mnemo, "recall", "allergies?", "--ns", "bob", "--home", home)
    # A rebuild folds the actors' streams in a child process started by module name.
    aside = tmp_path / "aside.toml"
    aside.write_text("[projections]\naside_above = 1\n")
    run(mnemo, "rebuild", "--home", home, "--config", aside)
    assert "peanuts" in run(mnemo, "recall", "allergies?", "--ns", "bob", "--home", home)
