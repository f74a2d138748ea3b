"""The README's Python example runs as written (against a temporary data directory)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.usefixtures("ray_session")  # the service example runs on the session's Ray
def test_python_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README has a Python example"
    for block in blocks:
        code = block.replace("/tmp/mnemo-demo", str(tmp_path / "demo"))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
        assert out.getvalue(), "the example prints what it shows"
    assert (tmp_path / "demo" / "log" / "streams" / "input").is_dir()


def test_setup_commands_are_the_ci_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = (
        "(command -v chromium || apt-get install -y -q chromium || (apt-get update -q && "
        "apt-get install -y -q chromium)) && "
        "python -m pip install -c constraints.txt -e '.[test]' && python -m pytest"
    )
    assert command in readme and command in ci
