"""Patterns: what the completed episodes of a kind of task share, as a derived stream.

The actor follows the input stream. A completed episode joins a *family* (a kind of task) of
its namespace and domain: the family whose tasks share its task's words and whose episodes
took its steps (`fit` at least `join_at`), or a new one it names. At each completion the
family's patterns are worked out again over its latest `window` completed episodes:

- `tool_sequence`: the steps that at least `consensus` of the successful episodes took (and
  that did not fail), in the order they take them; its support is how many successful
  episodes took them all in that order, its success rate the share of all the episodes that
  did so which succeeded;
- `decision_point`: after a step of that sequence (or at the very start), the steps episodes
  took next; a point where two or more ways on were each taken `least` times and one surely
  led to success more often than another (their Wilson intervals at `z` do not meet);

and, over the namespace's whole history, for each error the episode met:

- `error_recovery`: a failed step's error (normalised: numbers, ids, quoted parts and paths
  replaced) and the steps taken until the failing tool next worked (at most
  `recovery_steps`), with how often that was done and how often the episode then succeeded.

A pattern holds from `least` episodes; its support says how many. Every pattern of the family
that holds (and every recovery the episode used) is logged as a `pattern.learned` event caused
by the completion, and one that stops holding is logged once more, inactive. An event's memory
id is the episode that anchors its pattern (the family's first, or the first to meet the
error), never a digest of its words: the pattern's id (the anchor, then `:sequence`,
`:after:<digest of the step>` or `:recovery:<n>`) and words are in the sealed payload.

The events are a function of the input stream's order alone, not of batch boundaries, so the
inline and Ray runners derive the same ones and a rebuild replays them; the state is a fold
of the episode events (restored by `observe`), and a namespace's is dropped when its erasure
is read.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.follower import Derived, Opened
from mnemoflow.eventlog.derived import Branch, PatternLearned
from mnemoflow.eventlog.episodes import EpisodeCompleted, EpisodeStarted, EpisodeStep
from mnemoflow.eventlog.schema import (
    EPISODE_COMPLETED,
    EPISODE_STARTED,
    EPISODE_STEP,
    INPUT_STREAM,
    PATTERN_LEARNED,
    PATTERNS_STREAM,
    SUBJECT_ERASED,
)
from mnemoflow.projections.text import tokenize

NAMED = 20  # the newest episodes a pattern names in each event (its audit names them all)
TERMS_KEPT = 40  # a family's task terms a tool_sequence event carries, most shared first
STEPS_WEIGH = 0.6  # the share of an episode's fit to a family its steps make


class PatternSettings(BaseModel):
    """The ``[patterns]`` section."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    least: int = Field(2, ge=1)  # episodes a pattern needs to hold
    window: int = Field(200, ge=2)  # a family's latest completed episodes its patterns read
    consensus: float = Field(0.6, gt=0, le=1)  # share of successes a sequence's step needs
    z: float = Field(1.64, ge=0)  # how sure a decision point must be (see `_decision`)
    recovery_steps: int = Field(4, ge=1)
    join_at: float = Field(0.45, ge=0, le=1)  # fit for an episode to join a family


def step_name(tool: str, action: str) -> str:
    return f"{tool}:{action}"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_PATH = re.compile(r"(?:[a-z]:)?(?:[\\/][\w.\-]+){2,}[\\/]?", re.IGNORECASE)
_ID = re.compile(r"\b(?=[0-9a-f-]*\d)[0-9a-f]{8,}(?:-[0-9a-f]{4,})*\b|\b0x[0-9a-f]+\b", re.I)
_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_SPACE = re.compile(r"\s+")


def normalise_error(message: str) -> str:
    """An error message with what changes from one occurrence to the next (quoted values,
    paths, ids, numbers) replaced, so that the same error is one key."""
    text = _QUOTED.sub("<q>", message.casefold())
    text = _PATH.sub("<path>", text)
    text = _ID.sub("<id>", text)
    text = _NUMBER.sub("<n>", text)
    return _SPACE.sub(" ", text).strip()[:200]


def overlap(words: Collection[str], counts: Mapping[str, float], size: float = 1) -> float:
    """How well words (a task's terms, an episode's steps) fit a group of `size` members that
    has each word `counts[word]` times: over the distinct words, the mean share of the
    members having each (1: every word is in every member)."""
    distinct = set(words)
    if not distinct or size <= 0:
        return 0.0
    return sum(counts.get(w, 0) for w in distinct) / (len(distinct) * size)


def is_subsequence(wanted: Sequence[str], steps: Iterable[str]) -> bool:
    it = iter(steps)
    return all(any(s == w for s in it) for w in wanted)


@dataclass(frozen=True, slots=True)
class _Step:
    name: str  # tool:action
    error: str | None  # normalised; None: it worked

    @property
    def tool(self) -> str:
        return self.name.partition(":")[0]


@dataclass(slots=True)
class _Run:
    """An episode under way."""

    task: str
    terms: frozenset[str]
    domain: str | None
    steps: list[_Step] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Done:
    episode_id: str
    steps: tuple[_Step, ...]
    success: bool

    def worked(self) -> list[str]:
        """The steps that worked, in order, a repeat in a row counted once."""
        out: list[str] = []
        for s in self.steps:
            if s.error is None and (not out or out[-1] != s.name):
                out.append(s.name)
        return out


@dataclass(slots=True)
class _Family:
    family_id: str
    task: str
    domain: str | None
    index: int  # its place in the namespace's families
    window: deque[_Done]
    size: int = 0  # episodes ever joined
    wins: int = 0  # of which succeeded
    terms: Counter[str] = field(default_factory=Counter)  # tasks having each term
    steps: Counter[str] = field(default_factory=Counter)  # episodes taking each step
    live: dict[str, PatternLearned] | None = None  # what held at its last completion

    def shares(self) -> dict[str, float]:
        return {t: c / self.size for t, c in self.terms.items()}

    def fit(self, terms: Collection[str], steps: Collection[str]) -> float:
        """How well an episode fits: its task's `overlap` with the family's tasks and its
        steps' with the family's episodes. What an agent did says more of a kind of task than
        how the task was put, once it is known what doing it takes: the steps weigh up to
        `STEPS_WEIGH`, growing with the family's successes (w / (w + 1) of it), so a kind
        first met failing does not turn away its successes. (Sums of counts: the same fit in
        every process, whatever order the words come in.)"""
        task = overlap(terms, self.terms, self.size)
        if not steps:
            return task
        weigh = STEPS_WEIGH * self.wins / (self.wins + 1)
        return weigh * overlap(steps, self.steps, self.size) + (1 - weigh) * task


@dataclass(slots=True)
class _Tally:
    """One way of recovering from one error."""

    pattern_id: str
    first: _Family  # the family it was first met in
    failed: str
    error: str
    recovery: tuple[str, ...]
    seen: int = 0
    worked: int = 0
    episodes: deque[str] = field(default_factory=lambda: deque(maxlen=NAMED))
    families: dict[str, None] = field(default_factory=dict)  # in order first met


@dataclass(slots=True)
class _Error:
    anchor: str  # the first episode that met it
    recoveries: dict[tuple[str, ...], _Tally] = field(default_factory=dict)


@dataclass(slots=True)
class _Space:
    """A namespace's state."""

    runs: dict[str, _Run] = field(default_factory=dict)
    families: list[_Family] = field(default_factory=list)
    by_word: dict[str, set[int]] = field(default_factory=dict)  # term or step -> families
    errors: dict[tuple[str, str], _Error] = field(default_factory=dict)


class PatternsActor:
    name = "patterns"
    upstream = INPUT_STREAM
    output = PATTERNS_STREAM
    # The input's kinds its state folds: a restore reads only these.
    observes = frozenset({EPISODE_STARTED, EPISODE_STEP, EPISODE_COMPLETED, SUBJECT_ERASED})

    def __init__(self, settings: PatternSettings | None = None) -> None:
        self.settings = settings or PatternSettings()
        self.restored = False
        self._spaces: dict[str, _Space] = {}

    def observe(self, batch: Sequence[Opened]) -> None:
        self._step(batch, emit=False)

    def process(self, batch: Sequence[Opened]) -> list[Derived]:
        return self._step(batch, emit=True)

    def _step(self, batch: Sequence[Opened], *, emit: bool) -> list[Derived]:
        out: list[Derived] = []
        for event in batch:
            r, p = event.record, event.payload
            if r.kind == SUBJECT_ERASED:
                self._spaces.pop(r.namespace, None)  # nothing of it stays in this process
                continue
            if r.memory_id is None or p is None:
                continue
            space = self._spaces.setdefault(r.namespace, _Space())
            if isinstance(p, EpisodeStarted):
                space.runs[r.memory_id] = _Run(p.task, frozenset(tokenize(p.task)), p.domain)
            elif isinstance(p, EpisodeStep):
                run = space.runs.get(r.memory_id)
                if run is not None:
                    error = None if p.ok else normalise_error(p.error or "failed")
                    run.steps.append(_Step(step_name(p.tool, p.action), error))
            elif isinstance(p, EpisodeCompleted):
                run = space.runs.pop(r.memory_id, None)
                if run is None:
                    continue
                done = _Done(r.memory_id, tuple(run.steps), p.success)
                family = self._family_for(space, run, done)
                if emit and family.live is None:  # restored: what held before this one
                    family.live = {q.pattern_id: q for q in self._patterns_of(family)}
                self._add(space, family, run, done)
                touched = self._tally(space, family, done)
                if not emit:
                    family.live = None  # worked out when this actor next derives
                    continue
                made = [(family.family_id, q) for q in self._family_patterns(family)]
                made += [
                    (anchor, self._recovery(tally))
                    for anchor, tally in touched
                    if tally.seen >= self.settings.least
                ]
                out += [
                    Derived(PATTERN_LEARNED, r.namespace, anchor, q, r.position, r.occurred_at)
                    for anchor, q in made
                ]
        return out

    # -- folding -------------------------------------------------------------------------

    def _family_for(self, space: _Space, run: _Run, done: _Done) -> _Family:
        """The family the episode fits best, if one fits `join_at`; else a new one it names."""
        steps = {s.name for s in done.steps}
        candidates = {i for w in (*run.terms, *steps) for i in space.by_word.get(w, ())}
        best: tuple[_Family, float] | None = None
        for i in sorted(candidates):  # the first family of the best fit: order decides ties
            family = space.families[i]
            if family.domain != run.domain:
                continue
            fit = family.fit(run.terms, steps)
            if fit >= self.settings.join_at and (best is None or fit > best[1]):
                best = (family, fit)
        if best is not None:
            return best[0]
        window: deque[_Done] = deque(maxlen=self.settings.window)
        return _Family(done.episode_id, run.task, run.domain, len(space.families), window)

    def _add(self, space: _Space, family: _Family, run: _Run, done: _Done) -> None:
        if family.index == len(space.families):
            space.families.append(family)
        steps = {s.name for s in done.steps}
        family.size += 1
        family.wins += done.success
        family.terms.update(run.terms)
        family.steps.update(steps)
        for word in (*run.terms, *steps):
            space.by_word.setdefault(word, set()).add(family.index)
        family.window.append(done)

    def _tally(self, space: _Space, family: _Family, done: _Done) -> list[tuple[str, _Tally]]:
        """Count the ways the episode recovered from its errors; the tallies it changed, each
        with the error's anchor."""
        touched: dict[tuple[tuple[str, str], tuple[str, ...]], tuple[str, _Tally]] = {}
        for i, step in enumerate(done.steps):
            if step.error is None:
                continue
            recovery = self._recovered(step, done.steps[i + 1 :])
            if recovery is None:
                continue
            key = (step.name, step.error)
            error = space.errors.setdefault(key, _Error(done.episode_id))
            tally = error.recoveries.get(recovery)
            if tally is None:
                pattern_id = f"{error.anchor}:recovery:{len(error.recoveries) + 1}"
                tally = error.recoveries[recovery] = _Tally(
                    pattern_id, family, step.name, step.error, recovery
                )
            if (key, recovery) in touched:
                continue  # one episode counts once for each way it recovered
            touched[(key, recovery)] = (error.anchor, tally)
            tally.seen += 1
            tally.worked += done.success
            tally.episodes.append(done.episode_id)
            tally.families.setdefault(family.family_id)
        return list(touched.values())

    def _recovered(self, failed: _Step, after: Sequence[_Step]) -> tuple[str, ...] | None:
        """The steps that worked after a failed one, up to the failed step working again
        (or, failing that, its tool), within `recovery_steps`; None when neither did."""
        worked = [s for s in after if s.error is None][: self.settings.recovery_steps]
        names = [s.name for s in worked]
        for again in (
            names.index(failed.name) if failed.name in names else None,
            _first_of(worked, failed.tool),
        ):
            if again is not None:
                return tuple(names[: again + 1])
        return None

    # -- patterns ------------------------------------------------------------------------

    def _family_patterns(self, family: _Family) -> list[PatternLearned]:
        """The family's patterns that hold now, and those that held before and no longer do
        (inactive); remembered as what holds."""
        found = {p.pattern_id: p for p in self._patterns_of(family)}
        before = family.live if family.live is not None else {}
        gone = [p.model_copy(update={"active": False}) for i, p in before.items() if i not in found]
        family.live = found
        return [*found.values(), *gone]

    def _patterns_of(self, family: _Family) -> list[PatternLearned]:
        s = self.settings
        window = list(family.window)
        wins = [d for d in window if d.success]
        sequence = _sequence(wins, s.consensus, s.least)
        if len(sequence) < 2:  # one step in common is no sequence
            return []
        took = [d for d in window if is_subsequence(sequence, d.worked())]
        support = [d for d in took if d.success]
        if len(support) < s.least:
            return []
        shares = family.shares()
        terms = dict(sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))[:TERMS_KEPT])
        found = [
            PatternLearned(
                pattern_id=f"{family.family_id}:sequence",
                kind="tool_sequence",
                terms={t: round(v, 4) for t, v in terms.items()},
                steps=sequence,
                support=len(support),
                success_rate=round(len(support) / len(took), 4),
                episodes=_newest(d.episode_id for d in support),
                family=family.family_id,
                task=family.task,
                domain=family.domain,
            )
        ]
        for point in (None, *sequence):
            decision = self._decision(window, point)
            if decision is not None:
                branches, episodes = decision
                found.append(
                    PatternLearned(
                        pattern_id=f"{family.family_id}:after:{_digest(point or '')}",
                        kind="decision_point",
                        steps=[*([point] if point else []), branches[0].step],
                        point=point,
                        branches=branches,
                        support=sum(b.support for b in branches),
                        success_rate=branches[0].success_rate,
                        episodes=episodes,
                        family=family.family_id,
                        task=family.task,
                        domain=family.domain,
                    )
                )
        return found

    def _decision(
        self, window: Sequence[_Done], point: str | None
    ) -> tuple[list[Branch], list[str]] | None:
        """The ways on after `point` (its first time it worked) that were each taken `least`
        times, surest success first, and the episodes that took the best, if the best one's
        success rate is surely above the worst one's (their Wilson intervals at `z` apart)."""
        taken: dict[str, list[_Done]] = {}
        for done in window:
            at = 0 if point is None else _after(done.steps, point)
            if at is not None and at < len(done.steps):
                taken.setdefault(done.steps[at].name, []).append(done)
        z = self.settings.z
        ways = {
            step: (len(ds), sum(d.success for d in ds))
            for step, ds in taken.items()
            if len(ds) >= self.settings.least
        }
        if len(ways) < 2:
            return None
        ranked = sorted(ways, key=lambda w: (-wilson(*ways[w], z)[0], -ways[w][0], w))
        if wilson(*ways[ranked[0]], z)[0] <= min(wilson(*ways[w], z)[1] for w in ranked):
            return None
        branches = [Branch(w, ways[w][0], round(ways[w][1] / ways[w][0], 4)) for w in ranked]
        return branches, _newest(d.episode_id for d in taken[ranked[0]] if d.success)

    @staticmethod
    def _recovery(tally: _Tally) -> PatternLearned:
        return PatternLearned(
            pattern_id=tally.pattern_id,
            kind="error_recovery",
            family=tally.first.family_id,
            task=tally.first.task,
            domain=tally.first.domain,
            steps=[tally.failed, *tally.recovery],
            error=tally.error,
            failed_step=tally.failed,
            families=list(tally.families),
            support=tally.seen,
            success_rate=round(tally.worked / tally.seen, 4),
            episodes=list(reversed(tally.episodes)),
        )


def _sequence(wins: Sequence[_Done], consensus: float, least: int) -> list[str]:
    """The steps that worked in at least `consensus` of the successful episodes, ordered by
    where in them they come (their mean relative place)."""
    if len(wins) < least:
        return []
    worked = [d.worked() for d in wins]
    need = max(least, math.ceil(consensus * len(wins) - 1e-9))
    counts = Counter(name for names in worked for name in set(names))
    common = [name for name, n in counts.items() if n >= need]
    place: dict[str, float] = {}
    for name in common:
        at = [names.index(name) / max(len(names) - 1, 1) for names in worked if name in names]
        place[name] = sum(at) / len(at)
    return sorted(common, key=lambda name: (place[name], name))


def _first_of(steps: Sequence[_Step], tool: str) -> int | None:
    return next((i for i, s in enumerate(steps) if s.tool == tool), None)


def _after(steps: Sequence[_Step], point: str) -> int | None:
    """The index of the step after the first time `point` worked, or None when it never did."""
    for i, step in enumerate(steps):
        if step.name == point and step.error is None:
            return i + 1
    return None


def wilson(n: int, wins: int, z: float) -> tuple[float, float]:
    """The Wilson score interval of a success rate of `wins` in `n`, at `z`."""
    rate = wins / n
    centre = rate + z * z / (2 * n)
    spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return (centre - spread) / scale, (centre + spread) / scale


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=6).hexdigest()


_PATTERN_ID = re.compile(r"(.+):(?:sequence|after:[0-9a-f]{12}|recovery:\d+)")


def pattern_anchor(pattern_id: str) -> str | None:
    """The episode a pattern id is anchored on (its events carry it), or None when the id
    is no pattern's."""
    found = _PATTERN_ID.fullmatch(pattern_id)
    return None if found is None else found.group(1)


def _newest(episode_ids: Iterable[str]) -> list[str]:
    return list(reversed(list(episode_ids)))[:NAMED]
