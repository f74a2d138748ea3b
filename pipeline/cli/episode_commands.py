"""`mnemo episode start|step|complete|show|list`, `mnemo patterns`, `mnemo context` and
`mnemo guard add|list|remove|check`: what agents did in their tasks, what was learned from
it, what a new task gets, and the rules an agent checks before it acts."""

from __future__ import annotations

import argparse
import json

from mnemoflow.eventlog.errors import ValidationError
from mnemoflow.pipeline.api.episodes import EpisodeRecord
from mnemoflow.pipeline.api.patterns import PATTERN_KINDS, PatternRecord
from mnemoflow.pipeline.api.wire import receipt_json
from mnemoflow.pipeline.cli.common import AddCommand, emit, open_client


def _cmd_start(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.episodes.start(
            args.task,
            args.ns,
            domain=args.domain,
            language=args.language,
            tags=args.tag or (),
            occurred_at=args.at,
            event_id=args.id,
        )
    emit(args, receipt_json(r) | {"episode_id": r.memory_id}, str(r.memory_id))
    return 0


def _cmd_step(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.episodes.step(
            args.episode_id,
            args.tool,
            args.action,
            error=args.error,
            latency_ms=args.latency_ms,
            tokens=args.tokens,
            observation=args.observation,
            occurred_at=args.at,
            event_id=args.id,
        )
    emit(args, receipt_json(r), f"step logged (position {r.position})")
    return 0


def _cmd_complete(args: argparse.Namespace) -> int:
    if args.success == args.failure:
        raise ValidationError("say how it ended: --success or --failure")
    with open_client(args) as mem:
        r = mem.episodes.complete(
            args.episode_id,
            args.success,
            score=args.score,
            result=args.result,
            error=args.error,
            occurred_at=args.at,
            event_id=args.id,
        )
        episode = mem.episodes.get(args.episode_id)
    line = f"completed: {episode.outcome}, score {episode.score:.2f} (position {r.position})"
    emit(args, receipt_json(r) | {"outcome": episode.outcome, "score": episode.score}, line)
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        episode = mem.episodes.get(args.episode_id)
    emit(args, episode.to_json(), "\n".join(_lines(episode)))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        found = mem.episodes.list(args.ns, domain=args.domain, limit=args.limit, offset=args.offset)
    for e in found:
        print(json.dumps(e.to_json(), ensure_ascii=False) if args.json else _summary(e))
    return 0


def _cmd_context(args: argparse.Namespace) -> int:
    with open_client(args, embeds=True) as mem:
        found = mem.context(args.task, args.ns, domain=args.domain, tags=args.tag or (), k=args.k)
    if args.json:
        print(json.dumps(found.to_json(), ensure_ascii=False))
        return 0
    print("episodes:" if found.episodes else "episodes: none that bear on it")
    for e in found.episodes:
        print(f"  {e.relevance:6.3f}  {_summary(e)}")
        print(
            "          "
            + " -> ".join(f"{s.tool}:{s.action}" + ("" if s.ok else " (failed)") for s in e.steps)
        )
    print("patterns:" if found.patterns else "patterns: none learned for its kind of task")
    for pattern in found.patterns:
        print(f"  {pattern.relevance or 0:6.3f}  {pattern_line(pattern)}")
    print("memories:" if found.memories else "memories: none")
    for hit in found.memories:
        print(f"  {hit.score:6.3f}  {hit.text}")
    return 0


def _cmd_patterns(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        found = mem.patterns.find(
            args.ns, task=args.task, error=args.error, kind=args.kind, domain=args.domain, k=args.k
        )
    if args.json:
        for pattern in found:
            print(json.dumps(pattern.to_json(), ensure_ascii=False))
        return 0
    if not found:
        print("no patterns" + (" for that" if args.task or args.error else " learned yet"))
    for pattern in found:
        print(f"{pattern.pattern_id}  {pattern_line(pattern)}")
        print(f"    kind of task: {pattern.task!r}; from {pattern.support} episodes")
    return 0


def pattern_line(p: PatternRecord) -> str:
    """A pattern in one line: what it says, its support and success rate."""
    how = f"({p.support} episodes, {p.success_rate:.0%} succeeded)"
    if p.kind == "tool_sequence":
        return f"sequence  {' -> '.join(p.steps)}  {how}"
    if p.kind == "decision_point":
        where = f"after {p.point}" if p.point else "at the start"
        ways = ", ".join(f"{b.step} ({b.support}, {b.success_rate:.0%})" for b in p.branches)
        return f"decision  {where}: {ways}"
    return f"recovery  {p.steps[0]} failed {p.error!r}: {' -> '.join(p.recovery)}  {how}"


def _cmd_guard_add(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.guards.add(args.text, args.ns, args.action, pattern=args.match, event_id=args.id)
    emit(args, receipt_json(r) | {"rule_id": r.memory_id}, str(r.memory_id))
    return 0


def _cmd_guard_list(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        found = mem.guards.list(args.ns)
    for rule in found:
        if args.json:
            print(json.dumps(rule.to_json(), ensure_ascii=False))
            continue
        how = f" /{rule.pattern}/" if rule.pattern else ""
        origin = f" (learned: {rule.learned})" if rule.learned else ""
        print(f"{rule.rule_id}  {rule.action:5}  {rule.text!r}{how}{origin}")
    return 0


def _cmd_guard_remove(args: argparse.Namespace) -> int:
    with open_client(args) as mem:
        r = mem.guards.remove(args.rule_id, args.ns, args.reason)
    emit(args, receipt_json(r), f"removed {args.rule_id} (position {r.position})")
    return 0


def _cmd_guard_check(args: argparse.Namespace) -> int:
    """Exit status 0 allow, 3 warn, 4 block (1 stays an error): a script can act on it."""
    with open_client(args, embeds=True) as mem:
        decision = mem.guards.check(args.action, args.ns, asked_by="cli")
    lines = [decision.decision]
    lines += [f"  {m.rule.action}: {m.rule.text!r} ({m.why})" for m in decision.matched]
    emit(args, decision.to_json(), "\n".join(lines))
    return {"allow": 0, "warn": 3, "block": 4}[decision.decision]


def _summary(e: EpisodeRecord) -> str:
    outcome = e.outcome or "under way"
    score = "" if e.score is None else f" {e.score:.2f}"
    return f"{e.episode_id}  {outcome}{score}  {e.task!r}  ({len(e.steps)} steps)"


def _lines(e: EpisodeRecord) -> list[str]:
    lines = [_summary(e)]
    if e.domain or e.tags:
        lines.append(f"  domain {e.domain or '-'}, tags {', '.join(e.tags) or '-'}")
    for i, s in enumerate(e.steps, 1):
        how = "ok" if s.ok else f"failed: {s.error}"
        lines.append(f"  {i:>3}. {s.tool}:{s.action}  {how}")
    if e.result or e.error:
        lines.append(f"  result: {e.result or '-'}; error: {e.error or '-'}")
    return lines


def add_episode_commands(command: AddCommand, common: argparse.ArgumentParser) -> None:
    """`common`: the options every command takes, which each verb takes too."""
    p = command("episode", _cmd_show, "record and read episodes: what an agent did in a task")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, handler: object, help: str) -> argparse.ArgumentParser:
        """A verb of the command whose verbs `verbs` holds now."""
        v = verbs.add_parser(name, parents=[common], help=help, description=help)
        v.set_defaults(handler=handler)
        return v

    v = verb("start", _cmd_start, "start an episode; prints its id")
    v.add_argument("task", help="what the agent sets out to do")
    v.add_argument("--ns", required=True)
    v.add_argument("--domain")
    v.add_argument("--language")
    v.add_argument("--tag", action="append", help="a tag (repeat for more)")
    _when_and_id(v)

    v = verb("step", _cmd_step, "log a step of an episode")
    v.add_argument("episode_id")
    v.add_argument("--tool", required=True)
    v.add_argument("--action", required=True)
    v.add_argument("--error", help="the step failed, with this message")
    v.add_argument("--latency-ms", type=float)
    v.add_argument("--tokens", type=int)
    v.add_argument("--observation")
    _when_and_id(v)

    v = verb("complete", _cmd_complete, "complete an episode")
    v.add_argument("episode_id")
    v.add_argument("--success", action="store_true")
    v.add_argument("--failure", action="store_true")
    v.add_argument("--score", type=float, help="0..1 (default: from the steps)")
    v.add_argument("--result")
    v.add_argument("--error")
    _when_and_id(v)

    v = verb("show", _cmd_show, "an episode: task, steps, outcome")
    v.add_argument("episode_id")

    v = verb("list", _cmd_list, "a namespace's episodes, oldest first")
    v.add_argument("--ns", required=True)
    v.add_argument("--domain")
    v.add_argument("--limit", type=int, default=100)
    v.add_argument("--offset", type=int, default=0)

    p = command("guard", _cmd_guard_list, "rules about actions, checked before an agent acts")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    v = verb("add", _cmd_guard_add, "add a rule; prints its id")
    v.add_argument("text", help="the rule, in words")
    v.add_argument("--ns", required=True)
    v.add_argument("--action", choices=["warn", "block"], default="warn")
    v.add_argument("--match", help="a regular expression the action may match")
    v.add_argument("--id", help="your event id, to make a retry safe")
    v = verb("list", _cmd_guard_list, "the rules in force and the learned warnings")
    v.add_argument("--ns", required=True)
    v = verb("remove", _cmd_guard_remove, "remove a rule or silence a learned warning")
    v.add_argument("rule_id")
    v.add_argument("--ns", required=True)
    v.add_argument("--reason")
    v = verb("check", _cmd_guard_check, "allow, warn or block an action (exit 0, 3, 4)")
    v.add_argument("action", help="what the agent is about to do")
    v.add_argument("--ns", required=True)

    p = command("patterns", _cmd_patterns, "what completed episodes of a kind of task share")
    p.add_argument("--ns", required=True)
    p.add_argument("--task", help="the patterns of this task's kind of task, best fit first")
    p.add_argument("--error", help="the recoveries from this error")
    p.add_argument("--kind", choices=list(PATTERN_KINDS))
    p.add_argument("--domain")
    p.add_argument("-k", type=int, default=20)

    p = command(
        "context", _cmd_context, "what a new task gets: past episodes, patterns and memories"
    )
    p.add_argument("task")
    p.add_argument("--ns", required=True)
    p.add_argument("--domain")
    p.add_argument("--tag", action="append")
    p.add_argument("-k", type=int, default=5)


def _when_and_id(v: argparse.ArgumentParser) -> None:
    v.add_argument("--at", help="when, ISO 8601 (default: now)")
    v.add_argument("--id", help="your event id, to make a retry safe")
