"""Names of mnemoflow's Ray actors (light: the query RPC actor imports it)."""

from __future__ import annotations

import hashlib
from pathlib import Path

RAY_NAMESPACE = "mnemo"


def actor_name(node: str, home: Path) -> str:
    """Unique per data directory: one cluster may serve several."""
    digest = hashlib.sha1(str(home.resolve()).encode(), usedforsecurity=False).hexdigest()[:10]
    return f"{node}@{digest}"
