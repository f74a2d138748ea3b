"""Light parts stay light: the HTTP client and the query RPC actor load no DuckDB, FAISS or
model runtime (each Ray worker that did cost ~50 MB more)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("duckdb", "faiss", "onnxruntime", "tokenizers")


@pytest.mark.parametrize("module", ["pipeline.client", "pipeline.query_rpc", "pipeline"])
def test_light_modules_do_not_load_the_engines(module: str) -> None:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_memory_is_still_importable_from_the_package() -> None:
    from pipeline import Memory
    from pipeline.memory import Memory as Direct

    assert Memory is Direct
