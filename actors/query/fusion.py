"""Fusion and re-ranking: pure functions from channel scores to one score per memory.

- `fuse`: each channel's scores normalised over its candidates (z-scores) and added with the
  channel's weight — a memory a channel did not return gets that channel's lowest score, or 0
  for the sparse channels (entity, temporal) whose scores are evidence, not a ranking; or
  weighted reciprocal rank fusion;
- `propagate`: a memory gains a share of its best conversation neighbour's score;
- `spread`: spreading activation from the top memories along the linker's edges;
- `adjust`: feedback votes, FSRS retrievability, supersession and duplicate merging.

Neighbourhoods are NumPy adjacency arrays (`readparts.Adjacency`), so the work per query is
a few vector operations, not a Python loop per candidate.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np

from mnemoflow.actors.decay import DECAY, FACTOR
from mnemoflow.actors.query.readmodel import NamespaceModel
from mnemoflow.actors.query.readparts import Adjacency
from mnemoflow.eventlog.schema import to_micros

Scores = dict[int, float]
SPARSE_CHANNELS = frozenset({"entity", "temporal"})  # they return evidence, not a ranking
MICROS_PER_DAY = 86_400e6


def fuse(
    raw: Mapping[str, Mapping[int, float]],
    weights: Mapping[str, float],
    *,
    rrf_k: int | None = None,
    min_spread: Mapping[str, float] | None = None,
) -> Scores:
    """Normalised-score fusion; weighted reciprocal rank fusion when `rrf_k` is given.

    `min_spread` is each channel's noise floor: scores are divided by their standard
    deviation or by this, whichever is larger, so that among a handful of candidates that a
    channel scores alike (two memories, BM25 0.17 and 0.18) the difference stays small
    instead of becoming a full standard deviation."""
    docs = {d for scores in raw.values() for d in scores}
    fused = dict.fromkeys(docs, 0.0)
    for channel, scores in raw.items():
        if not scores:
            continue
        w = weights.get(channel, 0.0)
        if rrf_k is not None:
            ranked = sorted(scores, key=lambda d: (-scores[d], d))
            for rank, d in enumerate(ranked, 1):
                fused[d] += w / (rrf_k + rank)
            continue
        if channel in SPARSE_CHANNELS:
            # Evidence or none: a memory the channel did not return scores 0 there, and
            # the statistics run over every candidate (else one hit would get z = 0).
            scores = {d: scores.get(d, 0.0) for d in docs}
        values = np.array(list(scores.values()), np.float64)
        floor_spread = (min_spread or {}).get(channel, 0.0)
        mean, spread = float(values.mean()), max(float(values.std()), floor_spread) or 1.0
        floor = (float(values.min()) - mean) / spread
        for d in docs:
            s = scores.get(d)
            fused[d] += w * (floor if s is None else (s - mean) / spread)
    return fused


def _arrays(scores: Mapping[int, float]) -> tuple[np.ndarray, np.ndarray]:
    docs = np.fromiter(scores.keys(), np.int64, len(scores))
    values = np.fromiter(scores.values(), np.float64, len(scores))
    order = np.argsort(docs)
    return docs[order], values[order]


def _score_of(docs: np.ndarray, values: np.ndarray, wanted: np.ndarray, floor: float) -> np.ndarray:
    if not len(docs):
        return np.full(len(wanted), floor)
    at = np.minimum(np.searchsorted(docs, wanted), len(docs) - 1)
    return np.where(docs[at] == wanted, values[at], floor)


def propagate(fused: Scores, neighbours: Adjacency, share: float) -> Scores:
    """Each memory next to a candidate (and each candidate) gains `share` of its best
    neighbour's score (a memory not scored counts as the lowest score)."""
    if not fused or share <= 0:
        return fused
    docs, values = _arrays(fused)
    floor = float(values.min())
    _, near, _ = neighbours.expand(docs)
    reached = np.union1d(docs, near)
    base = _score_of(docs, values, reached, floor)
    owner, around, _ = neighbours.expand(reached)
    best = np.full(len(reached), -np.inf)
    np.maximum.at(best, owner, _score_of(docs, values, around, floor))
    linked = np.isfinite(best)
    out = np.where(linked, base + share * np.maximum(best, floor), base)
    return dict(zip(reached.tolist(), out.tolist(), strict=True))


def top(fused: Scores, n: int) -> Scores:
    """The n best (ties: lower doc first)."""
    if len(fused) <= n:
        return fused
    ranked = sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))[:n]
    return dict(ranked)


def spread(fused: Scores, edges: Adjacency, seeds: int) -> Scores:
    """Spreading activation, one hop: each of the top seeds passes its strength (its fused
    score relative to the best and the median, in [0, 1]) along its edges, scaled by the
    edge's weight and kind; a memory keeps the strongest activation it receives."""
    if not fused:
        return {}
    chosen = sorted(fused, key=lambda d: (-fused[d], d))[:seeds]
    best, middle = fused[chosen[0]], float(np.median(list(fused.values())))
    span = best - middle or 1.0
    strength = np.clip((np.array([fused[d] for d in chosen]) - middle) / span, 0.0, 1.0)
    owner, near, weight = edges.expand(np.array(chosen, np.int64))
    activation: Scores = {}
    for doc, value in zip(near.tolist(), (strength[owner] * weight).tolist(), strict=True):
        if value > activation.get(doc, 0.0):
            activation[doc] = value
    return activation


def add_scaled(fused: Scores, extra: Mapping[int, float], weight: float) -> Scores:
    """Add a [0, 1] signal in units of the fused scores' spread (a memory it alone reached
    starts from the lowest fused score)."""
    if not fused or not extra:
        return fused
    scale = float(np.std(list(fused.values()))) or 1.0
    floor = min(fused.values())
    out = dict(fused)
    for d, value in extra.items():
        out[d] = out.get(d, floor) + weight * scale * value
    return out


def retrievability_at(model: NamespaceModel, docs: np.ndarray, now: datetime) -> np.ndarray:
    """FSRS retrievability of each memory at `now` (NaN where it has no schedule)."""
    hit, values = model.stability.get(docs)
    out = np.full(len(docs), np.nan)
    if hit.any():
        rows = np.asarray(values, np.float64)[hit]
        days = np.maximum((to_micros(now) - rows[:, 1]) / MICROS_PER_DAY, 0.0)
        out[hit] = (1 + FACTOR * days / rows[:, 0]) ** DECAY
    return out


def adjust(
    fused: Scores,
    model: NamespaceModel,
    votes: Mapping[int, int],
    now: datetime,
    *,
    feedback_weight: float,
    decay_weight: float,
    superseded_penalty: float,
) -> Scores:
    """Votes move a memory (tanh of useful minus not useful); retrievability at `now` nudges
    it; a superseded memory drops (it stays findable: the archive), below the memory that
    superseded it where that one answers nearly as well; a merged duplicate gives its score
    to the memory it was merged into and leaves the ranking."""
    if not fused:
        return fused
    scale = float(np.std(list(fused.values()))) or 1.0
    out = dict(fused)
    if feedback_weight > 0 and votes:
        for d in out:
            if d in votes:
                out[d] += feedback_weight * float(np.tanh(votes[d]))
    if decay_weight > 0:
        docs = np.fromiter(out.keys(), np.int64, len(out))
        r = retrievability_at(model, docs, now)
        for d, value in zip(docs.tolist(), r.tolist(), strict=True):
            if value == value:  # not NaN
                out[d] += decay_weight * scale * (value - 0.5)
    margin = superseded_penalty * scale
    for d in [d for d in out if d in model.superseded_by]:
        newer = model.superseded_by[d]
        out[d] -= margin
        if newer in out and out[newer] >= out[d] - margin:
            out[d] = min(out[d], out[newer] - 1e-6)
    for d in [d for d in out if d in model.duplicate_of]:
        target = model.duplicate_of[d]
        out[target] = max(out.get(target, out[d]), out.pop(d))
    return out
