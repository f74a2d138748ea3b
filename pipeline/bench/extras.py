"""What the benchmarks need beyond the main job (`pip install 'mnemoflow[bench]'`): psutil
for the service's peak memory, matplotlib for `--plot`. Asked for before a run starts, so a
missing one is said at once, not after minutes of measuring."""

from __future__ import annotations

import importlib
from types import ModuleType

from mnemoflow.pipeline.api.errors import ConfigError

EXTRA = "pip install 'mnemoflow[bench]'"


def require(module: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"{purpose} needs {module.partition('.')[0]}, which the main job does not "
            f"install: {EXTRA}"
        ) from exc
