"""`mnemo bench embedder` and `mnemo bench rebuild`: the embedding model and the projections.

The rebuild benchmark fills a log with N stored memories and N `memory.embedded` events
(each with both vectors and a context text, as the embedder writes them),
then drops the projections and replays. Its vectors stand in for the model's (embedding
100,000 texts twice takes ten minutes and says nothing about replay): `WordVectors`, made
from the words of each text, take the same bytes in the log, the snapshot and the index, and
have neighbours as real embeddings do. Random unit vectors have none, the worst case for
HNSW: over 20,000 corpus memories (this machine, the model's query vectors) it took 2.5 times
as long to build over them, and 2.4 times as long to search, as over the model's vectors of
the same texts; over word vectors 0.9 and 0.8 times as long.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mnemoflow.actors.embedder import Embedder, EmbedderSettings
from mnemoflow.eventlog import Causation, Draft, EventLog, InputLog, LogSettings, StoreRequest
from mnemoflow.eventlog.payloads import MemoryEmbedded
from mnemoflow.eventlog.schema import EMBEDDED_STREAM, INPUT_STREAM, MEMORY_EMBEDDED
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.bench.log import scratch, synthetic_text
from mnemoflow.projections.projector import DUCKDB_FILE, FAISS_DIR, Projector, disk_bytes


def run_embedder_bench(settings: EmbedderSettings, sentences: int = 1000) -> dict[str, Any]:
    embedder = Embedder(settings)
    texts = [synthetic_text(i) for i in range(sentences)]
    embedder.embed(texts[:64])  # warm up the session
    began = time.perf_counter()
    for text in texts[: max(50, sentences // 5)]:
        embedder.embed([text])
    single = max(50, sentences // 5) / (time.perf_counter() - began)
    began = time.perf_counter()
    embedder.embed(texts)
    batched = sentences / (time.perf_counter() - began)
    return {
        "model_id": embedder.model_id,
        "threads": settings.threads,
        "sentences_per_s": {
            "batch_1": round(single, 1),
            f"batch_{settings.batch_size}": round(batched, 1),
        },
    }


def _fill(log: EventLog, memories: int, dim: int = 384, batch: int = 2000) -> None:
    requests = [
        StoreRequest(synthetic_text(i), f"user-{i % 16}", {"seq": i}) for i in range(memories)
    ]
    fill_with_word_vectors(log, requests, dim, batch)


class WordVectors:
    """Stand-in embeddings: each word a seeded random direction, a text the normalised sum
    of its words'. Texts sharing words are near one another, as with a real model."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim
        self._words: dict[str, npt.NDArray[np.float32]] = {}

    def __call__(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.casefold()):
                out[row] += self._word(word)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def _word(self, word: str) -> npt.NDArray[np.float32]:
        vector = self._words.get(word)
        if vector is None:
            seed = zlib.crc32(word.encode())
            vector = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            self._words[word] = vector
        return vector


_WORD = re.compile(r"\w+")


def fill_with_word_vectors(
    log: EventLog, requests: Sequence[StoreRequest], dim: int = 384, batch: int = 2000
) -> None:
    """Store the requests and write, for each, the `memory.embedded` event the embedder would
    (both vectors, the context text and memory) — with `WordVectors` for the model's."""
    inputs = InputLog(log, actor="bench")
    embed = WordVectors(dim)
    embedded = log.stream(EMBEDDED_STREAM)
    previous: dict[str, tuple[str, str]] = {}
    for start in range(0, len(requests), batch):
        chunk = requests[start : start + batch]
        receipts = inputs.store_many(chunk)
        drafts = []
        for receipt, request in zip(receipts, chunk, strict=True):
            namespace = request.namespace
            text = request.text if isinstance(request.text, str) else request.text.decode()
            before = previous.get(namespace)
            context = text if before is None else f"{before[1]} {text}"
            event_id = f"{EMBEDDED_STREAM}:{receipt.position}:0"
            vector, in_context = embed([text, context])
            payload = MemoryEmbedded.of(
                "bench-words",
                vector,
                in_context,
                context,
                None if before is None else before[0],
            )
            key_id, sealed = log.seal(MEMORY_EMBEDDED, namespace, event_id, payload)
            drafts.append(
                Draft(
                    event_id=event_id,
                    kind=MEMORY_EMBEDDED,
                    namespace=namespace,
                    payload=sealed,
                    actor="bench",
                    memory_id=receipt.memory_id,
                    key_id=key_id,
                    causation=Causation(INPUT_STREAM, receipt.position),
                )
            )
            previous[namespace] = (receipt.memory_id or "", text)
        embedded.append(drafts)


def run_rebuild_bench(
    settings: Settings, memories: int = 100_000, home: str | None = None
) -> dict[str, Any]:
    with scratch(home) as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        with EventLog(root / "log", LogSettings()) as log:
            _fill(log, memories)
            fill_s = time.perf_counter() - began
            projector = Projector(
                root / "projections", settings.vectors, batch_size=settings.projections.batch_size
            )
            began = time.perf_counter()
            projector.catch_up(log)
            projector.close()
            build_s = time.perf_counter() - began
            Projector.drop(root / "projections")
            projector = Projector(
                root / "projections", settings.vectors, batch_size=settings.projections.batch_size
            )
            began = time.perf_counter()
            replayed = projector.catch_up(log)
            projector.close()
            rebuild_s = time.perf_counter() - began
        disk = {
            "log": disk_bytes(root / "log"),
            "duckdb": disk_bytes(root / "projections" / DUCKDB_FILE),
            "faiss": disk_bytes(root / "projections" / FAISS_DIR),
        }
    total = sum(disk.values())
    return {
        "memories": memories,
        "events_replayed": replayed,
        "fill_s": round(fill_s, 2),
        "first_build_memories_per_s": round(memories / build_s),
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_memories_per_s": round(memories / rebuild_s),
        "rebuild_events_per_s": round(replayed / rebuild_s),
        "disk_bytes": {**disk, "total": total},
        "disk_bytes_per_memory": {
            k: round(v / memories) for k, v in {**disk, "total": total}.items()
        },
    }


def format_projection_bench(result: dict[str, Any]) -> str:
    if "sentences_per_s" in result:
        rates = ", ".join(f"{k}: {v:,}/s" for k, v in result["sentences_per_s"].items())
        return f"embedder {result['model_id']} ({result['threads']} threads): {rates}"
    per = result["disk_bytes_per_memory"]
    return "\n".join(
        [
            f"rebuild benchmark, {result['memories']:,} stored and embedded memories",
            f"  rebuild                 {result['rebuild_memories_per_s']:>10,} memories/s"
            f"   ({result['rebuild_events_per_s']:,} events/s, {result['rebuild_s']} s)",
            f"  first build             {result['first_build_memories_per_s']:>10,} memories/s",
            f"  disk per memory         {per['total']:>10,} bytes"
            f"   (log {per['log']:,}, duckdb {per['duckdb']:,}, faiss {per['faiss']:,})",
        ]
    )
