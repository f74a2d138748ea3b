"""What "nothing lost" means after a crash, checked on a data directory: every acknowledged
store in the input exactly once, positions gapless, every hash chain valid, each derived
stream with one derivation per source and no gap, projections equal to a fresh rebuild."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from mnemoflow import Memory
from mnemoflow.eventlog import EventLog
from mnemoflow.pipeline.api.config import load_settings
from mnemoflow.pipeline.api.topology import DEFAULT_TOPOLOGY

TEXT_KINDS = ("memory.stored", "memory.updated")  # what the extractor and embedder derive from


def assert_recovered(home: Path, acked: set[str]) -> None:
    """`acked`: the memory ids whose stores were acknowledged before the crash."""
    with EventLog(home / "log", writable=False) as log:
        assert log.verify().ok
        stored = [r for r in log.input.read() if r.kind == "memory.stored"]
        by_id = Counter(r.memory_id for r in stored)
        assert all(by_id[m] == 1 for m in acked)  # every acknowledged store, exactly once
        positions = [r.position for r in log.input.read()]
        assert positions == list(range(1, len(positions) + 1))
        texts = {r.position for r in log.input.read() if r.kind in TEXT_KINDS}
        completions = {r.position for r in log.input.read() if r.kind == "episode.completed"}
        for node in DEFAULT_TOPOLOGY.nodes:
            sources = Counter(
                (r.causation.position, r.event_id.rsplit(":", 1)[1])
                for r in log.stream(node.output).read()
                if r.causation and r.kind != "actor.progress"
            )
            assert all(n == 1 for n in sources.values()), f"{node.output} duplicated"
            derived_from = {p for p, _ in sources}
            if node.output == "patterns":  # from completed episodes, and not from each
                assert derived_from <= completions, "patterns from something no completion"
            elif node.upstream == "input" and node.output != "decay":
                assert derived_from == texts, f"{node.output} has a gap"
        extracted = log.stream("extracted").last_position
        extracted_events = {
            r.position for r in log.stream("extracted").read() if r.kind == "memory.extracted"
        }
        linked = {
            r.causation.position
            for r in log.stream("linked").read()
            if r.causation and r.kind == "memory.linked"
        }
        assert linked == extracted_events and max(extracted_events) <= extracted
    with Memory.open(settings=load_settings(home=home)) as mem:
        incremental = mem.checksums()
        mem.rebuild()
        assert mem.checksums() == incremental
