"""`mnemo bench patterns`: a synthetic task suite with known truth, and how well the patterns
actor learns it.

The suite is generated from a seed. Each family (a kind of task) has task phrasings with
slots, a recipe (the steps that succeed), failure branches (after some recipe step, a wrong
step and the episode fails) and recoverable errors (a recipe step fails with a message that
varies from one time to the next, a fix is made, the step is tried again). Episodes follow
the recipe with noise steps sprinkled in (and a noise family of unrelated one-off tasks).
The truth is each family's recipe (a `tool_sequence`), each failure branch (a
`decision_point`: after its step, the recipe's next step beats the wrong one) and each error's
fix (an `error_recovery`: the fix, then the step again).

Scored after N episodes: precision and recall of the patterns learned (active ones, per kind)
against that truth; for a new task of each family, whether `context` puts its recipe first and
returns the known recovery for its error (`patterns.find(error=...)` with a fresh message of
that error). Then the lag of the actor after a burst of 1,000 episodes of ten steps.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnemoflow.actors.patterns import normalise_error, step_name
from mnemoflow.pipeline.api.config import Settings
from mnemoflow.pipeline.api.memory import Memory
from mnemoflow.pipeline.bench.log import scratch

Step = tuple[str, str]


@dataclass(frozen=True)
class Failure:
    after: int  # the recipe's step index it parts after (-1: at the start)
    wrong: Step


@dataclass(frozen=True)
class Trouble:
    at: int  # the recipe step that fails
    message: str  # with {n} and {id} filled anew each time
    fix: tuple[Step, ...]


@dataclass(frozen=True)
class Family:
    name: str
    phrasings: tuple[str, ...]  # with {x}: a slot
    slots: tuple[str, ...]
    recipe: tuple[Step, ...]
    failures: tuple[Failure, ...]
    troubles: tuple[Trouble, ...]


FAMILIES = (
    Family(
        "deploy",
        ("deploy the {x} service to staging", "ship {x} to the staging cluster"),
        ("billing", "search", "orders", "payments", "auth"),
        (("git", "pull"), ("docker", "build"), ("pytest", "run"), ("kubectl", "apply")),
        (Failure(1, ("kubectl", "apply --force")),),
        (Trouble(1, "docker build timed out after {n}s on layer {id}", (("docker", "prune"),)),),
    ),
    Family(
        "migrate",
        ("add a {x} column to the users table", "migrate the users table for {x}"),
        ("locale", "timezone", "avatar", "nickname", "plan"),
        (("pg_dump", "backup"), ("alembic", "revision"), ("alembic", "upgrade"), ("psql", "check")),
        (Failure(0, ("psql", "alter table")),),
        (
            Trouble(
                2, "lock timeout on relation users after {n} ms", (("psql", "cancel backends"),)
            ),
        ),
    ),
    Family(
        "flaky",
        ("fix the flaky {x} test", "the {x} test fails now and then, make it stable"),
        ("login", "signup", "checkout", "export", "search"),
        (("pytest", "rerun"), ("editor", "open test"), ("editor", "add wait"), ("pytest", "loop")),
        (Failure(-1, ("ci", "disable test")),),
        (
            Trouble(
                0,
                "ModuleNotFoundError: No module named '{id}'",
                (("pip", "install -e ."), ("pip", "check")),
            ),
        ),
    ),
    Family(
        "trip",
        ("book a trip to {x} for the offsite", "plan travel to {x} next month"),
        ("lisbon", "kyoto", "oslo", "lima", "cairo"),
        (
            ("search", "flights"),
            ("search", "hotels"),
            ("booking", "reserve"),
            ("calendar", "block"),
        ),
        (Failure(1, ("booking", "reserve unrefundable")),),
        (Trouble(2, "payment declined: card ending {n}", (("wallet", "switch card"),)),),
    ),
    Family(
        "report",
        ("summarise the {x} incident report", "write up the {x} outage for the postmortem"),
        ("march", "dns", "database", "cdn", "payroll"),
        (("drive", "fetch"), ("reader", "extract"), ("llm", "summarise"), ("docs", "publish")),
        (Failure(2, ("docs", "publish draft")),),
        (Trouble(3, "HTTP 429 from docs api, retry after {n}s", (("clock", "wait"),)),),
    ),
)
NOISE_TOOLS = (("shell", "ls"), ("shell", "cat notes"), ("browser", "search docs"), ("chat", "ask"))
NOISE_TASKS = ("reply to {x}'s email", "water the plants", "rename the {x} folder", "tidy up")


def truth() -> dict[str, set[Any]]:
    """What the suite puts in: the recipes, the decisions, the recoveries."""
    names = {f.name: f for f in FAMILIES}
    sequences = {tuple(step_name(*s) for s in f.recipe) for f in names.values()}
    decisions = set()
    for f in FAMILIES:
        for failure in f.failures:
            point = None if failure.after < 0 else step_name(*f.recipe[failure.after])
            decisions.add((point, step_name(*f.recipe[failure.after + 1])))
    recoveries = set()
    for f in FAMILIES:
        for t in f.troubles:
            failed = step_name(*f.recipe[t.at])
            recovery = (*(step_name(*s) for s in t.fix), failed)
            message = normalise_error(_message(t, random.Random(0)))  # noqa: S311
            recoveries.add((failed, message, recovery))
    return {"tool_sequence": sequences, "decision_point": decisions, "error_recovery": recoveries}


def _message(trouble: Trouble, rng: random.Random) -> str:
    return trouble.message.format(n=rng.randrange(2, 99_999), id=f"{rng.getrandbits(48):012x}")


@dataclass(frozen=True)
class Planned:
    task: str
    steps: list[dict[str, Any]]
    success: bool
    family: str | None = None  # None: a one-off


def plan(rng: random.Random, *, noise: float = 0.15, failing: float = 0.25) -> Planned:
    """One episode: of a family (one in eight: of no family at all)."""
    if rng.random() < 0.125:
        task = rng.choice(NOISE_TASKS).format(x=rng.choice(("ana", "bo", "kim")))
        chores = [_step(rng.choice(NOISE_TOOLS)) for _ in range(rng.randrange(1, 4))]
        return Planned(task, chores, rng.random() < 0.5)
    family = rng.choice(FAMILIES)
    task = rng.choice(family.phrasings).format(x=rng.choice(family.slots))
    name = family.name
    steps: list[dict[str, Any]] = []
    failure = rng.choice(family.failures) if rng.random() < failing else None
    troubles = {t.at: t for t in family.troubles}
    if failure is not None and failure.after < 0:
        return Planned(task, [_step(failure.wrong), _step(family.recipe[0])], False, name)
    for i, step in enumerate(family.recipe):
        if rng.random() < noise:
            steps.append(_step(rng.choice(NOISE_TOOLS)))
        trouble = troubles.get(i)
        if trouble is not None and rng.random() < 0.3:
            steps.append(_step(step, error=_message(trouble, rng)))
            steps += [_step(fix) for fix in trouble.fix]
        steps.append(_step(step))
        if failure is not None and failure.after == i:
            steps.append(_step(failure.wrong))
            return Planned(task, steps, False, name)
    return Planned(task, steps, True, name)


def _step(step: Step, error: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"tool": step[0], "action": step[1]}
    if error is not None:
        out["error"] = error
    return out


def log_episodes(mem: Memory, namespace: str, planned: list[Planned]) -> dict[str, str | None]:
    """Log the episodes; the kind of task of each (by id)."""
    kinds = {}
    for p in planned:
        run = str(mem.episodes.start(p.task, namespace).memory_id)
        if p.steps:
            mem.episodes.step_many(run, p.steps)
        mem.episodes.complete(run, p.success)
        kinds[run] = p.family
    return kinds


def score(
    mem: Memory, namespace: str, kinds: dict[str, str | None], rng: random.Random
) -> dict[str, Any]:
    """Precision and recall of the learned patterns against the truth, per kind; for a new
    task of each phrasing, the share of its context's first 5 episodes of its kind (`kinds`:
    each episode's); for a new task of each family, whether its recipe comes first and its
    error's recovery is found."""
    want = truth()
    found = mem.patterns.find(namespace, k=1000)
    learned: dict[str, set[Any]] = {k: set() for k in want}
    for p in found:
        if p.kind == "tool_sequence":
            learned[p.kind].add(tuple(p.steps))
        elif p.kind == "decision_point":
            learned[p.kind].add((p.point, p.steps[-1]))
        else:
            learned[p.kind].add((p.steps[0], p.error, tuple(p.recovery)))
    by_kind = {}
    for kind, truths in want.items():
        hit = len(learned[kind] & truths)
        by_kind[kind] = {
            "learned": len(learned[kind]),
            "precision": round(hit / len(learned[kind]), 3) if learned[kind] else None,
            "recall": round(hit / len(truths), 3),
        }
    same = []  # for a new task of each phrasing: its 5 first episodes of its kind
    for family in FAMILIES:
        for phrasing in family.phrasings:
            first = mem.context(phrasing.format(x="brand-new"), namespace, k=5).episodes
            same.append(sum(kinds.get(e.episode_id) == family.name for e in first) / 5)
    recipe_first = recovered = 0
    for family in FAMILIES:
        task = rng.choice(family.phrasings).format(x="brand-new")
        context = mem.context(task, namespace, k=3)
        sequences = [p for p in context.patterns if p.kind == "tool_sequence"]
        recipe = [step_name(*s) for s in family.recipe]
        recipe_first += bool(sequences) and sequences[0].steps == recipe
        trouble = family.troubles[0]
        fixes = mem.patterns.find(namespace, error=_message(trouble, rng), k=1)
        expected = [*(step_name(*s) for s in trouble.fix), step_name(*family.recipe[trouble.at])]
        recovered += bool(fixes) and fixes[0].recovery == expected
    return {
        "kinds": by_kind,
        "episodes_of_its_kind_at_5": round(sum(same) / len(same), 3),
        "recipe_first": round(recipe_first / len(FAMILIES), 3),
        "recovery_found": round(recovered / len(FAMILIES), 3),
    }


def _at(settings: Settings, home: Path) -> Settings:
    paths = settings.paths.model_copy(update={"home": str(home)})
    return settings.model_copy(update={"paths": paths})


def run_patterns_bench(
    settings: Settings,
    sizes: Sequence[int] = (20, 50, 100, 250, 500),
    burst: int = 1000,
    seed: int = 7,
    home: str | None = None,
) -> dict[str, Any]:
    """Quality as the suite grows (one namespace, episodes added up to each size), then the
    lag after a burst of `burst` episodes of ten steps in another namespace."""
    rng = random.Random(seed)  # noqa: S311  (a reproducible suite, not a secret)
    growth = []
    with scratch(home) as tmp, Memory.open(settings=_at(settings, Path(tmp) / "home")) as mem:
        logged, kinds = 0, dict[str, str | None]()
        for size in sizes:
            kinds |= log_episodes(mem, "suite", [plan(rng) for _ in range(size - logged)])
            logged = size
            scored = score(mem, "suite", kinds, random.Random(size))  # noqa: S311
            growth.append({"episodes": size, **scored})
        planned: list[Planned] = []
        while len(planned) < burst:
            p = plan(rng, noise=0.4)
            if len(p.steps) >= 4:
                planned.append(Planned(p.task, (p.steps * 3)[:10], p.success))
        mem.sync()
        log_episodes(mem, "burst", planned)
        began = time.perf_counter()
        mem.sync()
        lag = time.perf_counter() - began
        patterns = sum(1 for _ in mem.events(stream="patterns", namespace="burst"))
    return {"growth": growth, "burst": burst, "burst_lag_s": round(lag, 2), "events": patterns}


def format_patterns_bench(result: dict[str, Any]) -> str:
    lines = [
        "patterns (synthetic task suite: 5 kinds of task, recipes, failure branches, "
        "recoverable errors, noise)",
        "  episodes  sequence P/R   decision P/R   recovery P/R   recipe first  recovery found"
        "  own kind @5",
    ]
    for row in result["growth"]:
        cells = []
        for kind in ("tool_sequence", "decision_point", "error_recovery"):
            k = row["kinds"][kind]
            precision = "  - " if k["precision"] is None else f"{k['precision']:.2f}"
            cells.append(f"{precision}/{k['recall']:.2f}")
        lines.append(
            f"  {row['episodes']:>8}  {cells[0]:>12}   {cells[1]:>12}   {cells[2]:>12}"
            f"   {row['recipe_first']:>12.2f}  {row['recovery_found']:>14.2f}"
            f"  {row['episodes_of_its_kind_at_5']:>11.2f}"
        )
    lines.append(
        f"  a burst of {result['burst']:,} episodes x 10 steps: patterns derived and projected"
        f" in {result['burst_lag_s']} s after the last completion ({result['events']:,} events)"
    )
    return "\n".join(lines)
