"""The Ray runner on a two-node ray.cluster_utils.Cluster (in a child process, with its own
Ray: this module does not use the session's Ray; conftest runs the tests that do last)."""

from __future__ import annotations

from pathlib import Path


def test_two_node_cluster(tmp_path: Path) -> None:
    """On a two-node ray.cluster_utils.Cluster the actor runs on the other node."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    process = subprocess.run(
        [sys.executable, "-m", "tests.pipeline.cluster_check", str(tmp_path / "home")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    result = json.loads(process.stdout.strip().splitlines()[-1])
    assert result["nodes"] == 2
    assert result["actor_node"] != result["driver_node"]
    # 20 embeddings, and as many extractions, links and schedules (plus any merges)
    assert result["derived"] >= 80 and result["once"] is True
