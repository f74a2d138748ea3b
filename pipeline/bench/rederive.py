"""`mnemo bench rederive`: replaying the history through a new model.

A home gets N memories of the synthetic agent corpus through `mnemo ingest`'s code (every
actor, projections caught up). Then, in this process: the new model alone on the texts the
embedder plans for those memories (each memory's own dated text and its text in context);
recall latency from a reader of the current generation (ten questions a second), first
alone, then while `rederive` writes the new generation, builds its projections and switches.
The new "model" is the same ONNX file under another model id: the work is the same as a
different model of its size.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from mnemoflow.actors.embedder import EmbedderActor
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.derivation import rederive
from mnemoflow.pipeline.api.generation import with_generation
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.corpus import corpus, queries
from mnemoflow.pipeline.bench.log import scratch
from mnemoflow.pipeline.bench.recall import NAMESPACE, percentiles


def _at(settings: Settings, home: Path) -> Settings:
    paths = settings.paths.model_copy(update={"home": str(home)})
    return settings.model_copy(update={"paths": paths})


def run_rederive_bench(
    settings: Settings, memories: int = 1000, home: str | None = None
) -> dict[str, Any]:
    from mnemoflow.pipeline.ingest.job import ingest

    with scratch(home) as tmp:
        root = Path(tmp)
        at = _at(settings, root / "home")
        source = root / "corpus.jsonl"
        with source.open("w") as f:
            for item in corpus(memories):
                f.write(
                    json.dumps({"text": item.text, "occurred_at": item.occurred_at.isoformat()})
                )
                f.write("\n")
        with Memory.open(settings=at) as mem:
            ingest(mem, [source], NAMESPACE, "jsonl", progress=False, compare=0)
        overrides = {"embedder": {"model_id": f"{settings.embedder.model_id}-rederived"}}
        with Memory.open(settings=at, read_only=True) as reader:
            actor = EmbedderActor(with_generation(at, overrides).embedder)
            texts, jobs = actor.plan(reader.log.opened(reader.log.input.read()))
            actor.embedder.embed(texts[:64])  # the session's first runs, as ingest pays them
            began = time.perf_counter()
            actor.embedder.embed(texts)
            raw_rate = len(jobs) / (time.perf_counter() - began)
            questions = queries(40)
            before = [_recall_s(reader, q) for q in questions]
            during: list[float] = []
            done = threading.Event()

            def keep_asking() -> None:  # an agent's pace, not flat out: 10 questions a second
                while not done.wait(0.1):
                    during.append(_recall_s(reader, questions[len(during) % len(questions)]))

            asking = threading.Thread(target=keep_asking)
            asking.start()
            try:
                report = rederive(at, "embedder", overrides)
            finally:
                done.set()
                asking.join()
    rate = len(jobs) / report.seconds
    return {
        "memories": len(jobs),
        "derived_events": report.derived,
        "seconds": report.seconds,
        "memories_per_s": round(rate, 1),
        "raw_embedder_memories_per_s": round(raw_rate, 1),
        "ratio": round(rate / raw_rate, 2),
        "recall_alone": percentiles(before),
        "recall_during": percentiles(during),
        "recalls_during": len(during),
    }


def _recall_s(mem: Memory, question: str) -> float:
    began = time.perf_counter()
    mem.recall(question, NAMESPACE, 10)
    return time.perf_counter() - began


def format_rederive_bench(result: dict[str, Any]) -> str:
    alone, during = result["recall_alone"], result["recall_during"]
    return "\n".join(
        [
            f"re-derivation of the embedder ({result['memories']:,} memories, "
            f"{result['derived_events']:,} events written, projections built, switched)",
            f"  end to end                {result['memories_per_s']:>10,} memories/s"
            f"   ({result['seconds']} s)",
            f"  the model alone           {result['raw_embedder_memories_per_s']:>10,} memories/s"
            f"   (ratio {result['ratio']:.2f})",
            f"  recall p50 / p99          {alone['p50_ms']:.1f} / {alone['p99_ms']:.1f} ms alone, "
            f"{during['p50_ms']:.1f} / {during['p99_ms']:.1f} ms during it "
            f"({result['recalls_during']} recalls, a reader of the current generation)",
        ]
    )
