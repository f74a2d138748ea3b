"""Light parts stay light: the HTTP client, the query RPC actor and the Ray workers of the
light actors load no DuckDB, FAISS or model runtime (each process that did cost ~50 MB more;
the embedder's worker loads the model runtime when it builds its model)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("duckdb", "faiss", "onnxruntime", "tokenizers")


@pytest.mark.parametrize(
    "module",
    [
        "mnemoflow.pipeline.api.client",
        "mnemoflow.pipeline.service.query_rpc",
        "mnemoflow",
        "mnemoflow.pipeline",
        "mnemoflow.pipeline.service.ray_runner",
    ],
)
def test_light_modules_do_not_load_the_engines(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_memory_is_the_front_door() -> None:
    from mnemoflow import Memory
    from mnemoflow.pipeline.api.memory import Memory as Direct

    assert Memory is Direct
