"""`mnemo eval locomo`: the retrieval protocol of shared/data/README.md, through the Python API.

One namespace per conversation; every turn is a memory ("{speaker}: {text}", plus
" [shares image: {caption}]"), its event time the session's date, its dia_id in metadata.
Every question of category 1-4 with evidence is asked in its conversation's namespace;
recall@k = |dia_ids in the top k ∩ evidence| / |evidence|, averaged. Two baselines run in the
same process over the same memories: BM25 alone (over the dated text) and cosine alone.

With `feedback`, recall learning from use is measured last: in each conversation the caller
gives feedback on every other question (useful on the evidence among its top 10, not useful
on its best hit that is not evidence) and the other questions are scored before and after.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.ingest.locomo import Conversation, load_locomo

SYSTEMS: dict[str, dict[str, Any]] = {
    "mnemoflow": {},
    "bm25": {"weights": {"lexical": 1.0}, "neighbor_weight": 0.0},
    "cosine": {"weights": {"semantic": 1.0}, "neighbor_weight": 0.0},
}


def run_locomo(
    path: Path,
    ks: Sequence[int],
    settings: Settings,
    home: Path | None = None,
    *,
    feedback: bool = False,
) -> dict[str, Any]:
    if feedback and home is not None:
        raise ValidationError(
            "feedback changes the memories it scores: measure it in a temporary directory "
            "(without --home), so that a kept home stays as stored"
        )
    conversations = load_locomo(path)
    with tempfile.TemporaryDirectory(prefix="mnemo-eval-") as tmp:
        chosen = home or Path(tmp)
        settings = settings.model_copy(
            update={"paths": settings.paths.model_copy(update={"home": str(chosen)})}
        )
        with Memory.open(settings=settings, actor="eval") as mem:
            began = time.perf_counter()
            for conv in conversations:
                for start in range(0, len(conv.turns), 500):
                    mem.store_many(conv.turns[start : start + 500])
            mem.sync()
            ingest_s = time.perf_counter() - began
            report: dict[str, Any] = {
                "file": str(path),
                "ingest_s": round(ingest_s, 2),
                "memories": sum(len(c.turns) for c in conversations),
                "questions": sum(len(c.questions) for c in conversations),
            }
            for system, options in SYSTEMS.items():
                report[system] = _score(mem, conversations, ks, options)
            if feedback:
                report["feedback"] = _feedback_gain(mem, conversations, ks)
    return report


def _feedback_gain(
    mem: Memory, conversations: list[Conversation], ks: Sequence[int]
) -> dict[str, Any]:
    """Feedback on half of each conversation's questions; the other half scored before and
    after it."""
    given = [replace(c, questions=c.questions[0::2]) for c in conversations]
    scored = [replace(c, questions=c.questions[1::2]) for c in conversations]
    before = _score(mem, scored, ks, {})
    votes = 0
    for conv in given:
        for q in conv.questions:
            hits = mem.recall(q.text, conv.sample_id, 10, now=conv.asked_at)
            used = [h for h in hits if h.metadata.get("dia_id") in q.evidence]
            wrong = next((h for h in hits if h.metadata.get("dia_id") not in q.evidence), None)
            for hit in used:
                mem.feedback(hit.memory_id, True, note="evidence")
            if wrong is not None:
                mem.feedback(wrong.memory_id, False, note="best hit not evidence")
            votes += len(used) + (wrong is not None)
    mem.sync()
    after = _score(mem, scored, ks, {})
    return {
        "feedback_events": votes,
        "questions_given_feedback": sum(len(c.questions) for c in given),
        "before": before,
        "after": after,
    }


def _score(
    mem: Memory, conversations: list[Conversation], ks: Sequence[int], options: dict[str, Any]
) -> dict[str, Any]:
    depth = max(max(ks), 10)
    recalls: dict[int, list[float]] = defaultdict(list)
    by_category: dict[int, list[float]] = defaultdict(list)
    reciprocal: list[float] = []
    ranks = []
    began = time.perf_counter()
    for conv in conversations:
        for q in conv.questions:
            hits = mem.recall(q.text, conv.sample_id, depth, now=conv.asked_at, **options)
            dias = [str(h.metadata.get("dia_id")) for h in hits]
            for k in ks:
                recalls[k].append(len(set(dias[:k]) & q.evidence) / len(q.evidence))
            by_category[q.category].append(len(set(dias[:10]) & q.evidence) / len(q.evidence))
            first = next((i for i, d in enumerate(dias, 1) if d in q.evidence), None)
            reciprocal.append(0.0 if first is None else 1.0 / first)
            ranks.append(
                {
                    "sample": conv.sample_id,
                    "question": q.text,
                    "category": q.category,
                    "evidence": sorted(q.evidence),
                    "ranks": sorted(i for i, d in enumerate(dias, 1) if d in q.evidence),
                }
            )
    elapsed = time.perf_counter() - began
    return {
        "recall": {f"@{k}": round(sum(v) / len(v), 4) for k, v in sorted(recalls.items())},
        "recall@10_by_category": {
            str(c): round(sum(v) / len(v), 4) for c, v in sorted(by_category.items())
        },
        "mrr": round(sum(reciprocal) / len(reciprocal), 4),
        "ms_per_query": round(elapsed / max(1, len(reciprocal)) * 1e3, 2),
        "per_question": ranks,
    }


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"LoCoMo retrieval: {report['questions']} questions over {report['memories']} "
        f"memories (ingest and embedding {report['ingest_s']} s)"
    ]
    for system in SYSTEMS:
        r = report[system]
        at = "  ".join(f"R{k} {v:.3f}" for k, v in r["recall"].items())
        cats = " ".join(f"c{c}={v:.3f}" for c, v in r["recall@10_by_category"].items())
        lines.append(
            f"  {system:<10} {at}  MRR {r['mrr']:.3f}  R@10 by category {cats}"
            f"  ({r['ms_per_query']} ms/query)"
        )
    if "feedback" in report:
        f = report["feedback"]
        lines.append(
            f"  feedback on {f['questions_given_feedback']} questions ({f['feedback_events']} "
            f"votes); the other {len(f['after']['per_question'])}:"
        )
        for when in ("before", "after"):
            r = f[when]
            at = "  ".join(f"R{k} {v:.3f}" for k, v in r["recall"].items())
            lines.append(f"    {when:<7} {at}  MRR {r['mrr']:.3f}")
    return "\n".join(lines)
