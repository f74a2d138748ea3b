"""`Memory.connect(url, api_key)`: the Python API of `Memory.open`, over HTTP.

The same methods take the same arguments and return the same objects (receipts, hits, rows,
events, reports), rebuilt from the service's JSON; the service's errors come back as the
same exceptions (`ValidationError`, `MemoryNotFound`, …), and refusals of the key as
`AccessDenied`.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from mnemoflow.actors.query.hit import Hit
from mnemoflow.eventlog import EventView, LogReport, Receipt, StoreRequest
from mnemoflow.eventlog import errors as log_errors
from mnemoflow.eventlog.payloads import Metadata, local_now
from mnemoflow.pipeline.api import errors as pipeline_errors
from mnemoflow.pipeline.api.episodes import EpisodeRecord, TaskContext
from mnemoflow.pipeline.api.errors import PipelineError
from mnemoflow.pipeline.api.guards import GuardDecision, GuardRule
from mnemoflow.pipeline.api.patterns import PatternRecord
from mnemoflow.pipeline.api.record import Contradiction, MemoryRecord
from mnemoflow.pipeline.api.transfer import ImportReport, Numbered
from mnemoflow.pipeline.api.wire import (
    contradiction_of,
    event_of,
    hit_of,
    receipt_of,
    record_of,
    report_of,
)

if TYPE_CHECKING:
    import httpx


class AccessDenied(PipelineError):
    """The service refused the key: missing or unknown (401), or not for this namespace
    (403), or over its rate (429)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class ServiceError(PipelineError):
    """The service failed or could not be reached."""


def _errors() -> dict[str, type[Exception]]:
    found: dict[str, type[Exception]] = {}
    for module in (log_errors, pipeline_errors):
        for name in dir(module):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, log_errors.MnemoError):
                found[name] = value
    return found


_ERRORS = _errors()


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise log_errors.ValidationError(f"text is not valid UTF-8: {exc}") from exc
    return value


def _raise(response: httpx.Response) -> NoReturn:
    """The service's error as the exception the embedded API raises."""
    try:
        error = response.json()
        kind, detail = error["error"], error["detail"]
    except (ValueError, KeyError, TypeError):
        kind, detail = "ServiceError", response.text[:500]
    if response.status_code in (401, 403, 429):
        raise AccessDenied(response.status_code, detail)
    if response.status_code in (413, 422):
        raise log_errors.ValidationError(detail)
    raise _ERRORS.get(kind, ServiceError)(detail)


class RemoteMemory:
    def __init__(self, url: str, api_key: str | None = None, *, timeout: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/")
        import httpx  # here: every CLI command asks running_server, few find one

        self._http: httpx.Client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        import httpx

        try:
            response = self._http.request(
                method,
                path,
                json=body,
                params={k: v for k, v in params.items() if v is not None} or None,
            )
        except httpx.HTTPError as exc:
            raise ServiceError(f"cannot reach {self.url}: {exc}") from exc
        if response.status_code < 400:
            return response.json()
        _raise(response)

    # -- writing -------------------------------------------------------------------------

    def store(
        self,
        text: str | bytes,
        namespace: str,
        metadata: Metadata | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        body = {
            "text": _text(text),
            "namespace": namespace,
            "metadata": metadata,
            "occurred_at": _iso(occurred_at),
            "event_id": event_id,
        }
        return receipt_of(self._call("POST", "/store", body))

    def store_many(self, requests: Sequence[StoreRequest]) -> list[Receipt]:
        items = [
            {
                "text": _text(r.text),
                "namespace": r.namespace,
                "metadata": r.metadata,
                "occurred_at": _iso(r.occurred_at),
                "event_id": r.event_id,
            }
            for r in requests
        ]
        return [receipt_of(d) for d in self._call("POST", "/store_many", {"items": items})]

    def update(
        self,
        memory_id: str,
        text: str | bytes,
        metadata: Metadata | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        body = {
            "memory_id": memory_id,
            "text": _text(text),
            "metadata": metadata,
            "occurred_at": _iso(occurred_at),
            "event_id": event_id,
        }
        return receipt_of(self._call("POST", "/update", body))

    def forget(
        self, memory_id: str, reason: str | None = None, event_id: str | None = None
    ) -> Receipt:
        body = {"memory_id": memory_id, "reason": reason, "event_id": event_id}
        return receipt_of(self._call("POST", "/forget", body))

    def feedback(
        self, memory_id: str, useful: bool, note: str | None = None, event_id: str | None = None
    ) -> Receipt:
        body = {"memory_id": memory_id, "useful": useful, "note": note, "event_id": event_id}
        return receipt_of(self._call("POST", "/feedback", body))

    def erase(self, namespace: str) -> Receipt:
        return receipt_of(self._call("POST", "/erase", {"namespace": namespace}))

    # -- reading -------------------------------------------------------------------------

    def recall(
        self,
        query: str,
        namespace: str,
        k: int = 10,
        *,
        min_position: int | None = None,
        as_of: int | str | datetime | None = None,
        filters: Mapping[str, Any] | None = None,
        now: datetime | None = None,
    ) -> list[Hit]:
        """`now` defaults to this process's clock, sent with its offset: time words in the
        query are read on the asker's clock, not the server's."""
        body = {
            "query": query,
            "namespace": namespace,
            "k": k,
            "min_position": min_position,
            "as_of": as_of if isinstance(as_of, int) else _iso(as_of),
            "filters": None if filters is None else dict(filters),
            "now": _iso(now or local_now()),
        }
        return [hit_of(d) for d in self._call("POST", "/recall", body)]

    def get(self, memory_id: str) -> MemoryRecord | None:
        try:
            return record_of(self._call("GET", f"/memories/{memory_id}"))
        except log_errors.MemoryNotFound:
            return None

    def memories(
        self, namespace: str, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[MemoryRecord]:
        found = self._call(
            "GET", f"/namespaces/{namespace}/memories", status=status, limit=limit, offset=offset
        )
        return [record_of(d) for d in found]

    @functools.cached_property
    def guards(self) -> RemoteGuards:
        """`Memory.guards` over HTTP."""
        return RemoteGuards(self)

    @functools.cached_property
    def episodes(self) -> RemoteEpisodes:
        """`Memory.episodes` over HTTP."""
        return RemoteEpisodes(self)

    @functools.cached_property
    def patterns(self) -> RemotePatterns:
        """`Memory.patterns` over HTTP."""
        return RemotePatterns(self)

    def context(
        self,
        task: str,
        namespace: str,
        *,
        domain: str | None = None,
        tags: Sequence[str] = (),
        k: int = 5,
    ) -> TaskContext:
        body = {"task": task, "namespace": namespace, "domain": domain, "tags": list(tags), "k": k}
        doc = self._call("POST", "/context", body)
        episodes = [EpisodeRecord.from_json(e) for e in doc["episodes"]]
        patterns = [PatternRecord.from_json(p) for p in doc["patterns"]]
        return TaskContext(episodes, patterns, [hit_of(h) for h in doc["memories"]])

    def contradictions(self, namespace: str) -> list[Contradiction]:
        found = self._call("GET", f"/namespaces/{namespace}/contradictions")
        return [contradiction_of(d) for d in found]

    def history(self, memory_id: str) -> list[EventView]:
        return [event_of(d) for d in self._call("GET", f"/history/{memory_id}")]

    def audit(self, memory_id: str) -> list[EventView]:
        return [event_of(d) for d in self._call("GET", f"/audit/{memory_id}")]

    # -- moving data in and out ----------------------------------------------------------

    def export(
        self,
        namespaces: Sequence[str] | None = None,
        as_of: int | str | datetime | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The lines of a `mnemoflow.export`, streamed from the service."""
        import httpx

        params: list[tuple[str, str | int | float | bool | None]] = [
            ("ns", n) for n in namespaces or ()
        ]
        if as_of is not None:
            params.append(("as_of", str(as_of) if isinstance(as_of, int) else str(_iso(as_of))))
        try:
            with self._http.stream("GET", "/export", params=params) as response:
                if response.status_code >= 400:
                    response.read()
                    _raise(response)
                for line in response.iter_lines():
                    if line.strip():
                        yield json.loads(line)
        except httpx.HTTPError as exc:
            raise ServiceError(f"export from {self.url} broke off: {exc}") from exc

    def import_rows(
        self,
        rows: Iterable[Numbered],
        ns_map: Mapping[str, str] | None = None,
        *,
        batch: int = 1000,
        max_bytes: int = 1 << 19,
    ) -> ImportReport:
        """`Memory.import_rows` through the service (an admin key), in requests of at most
        `batch` rows and about `max_bytes`, each naming its first row's line."""
        total = ImportReport(0, 0, 0, 0.0)
        chunk: list[Numbered] = []
        size = 0
        for numbered in itertools.chain(rows, [None]):
            if numbered is not None:
                chunk.append(numbered)
                size += len(numbered[1].model_dump_json())
            if chunk and (numbered is None or len(chunk) >= batch or size >= max_bytes):
                body = {
                    "rows": [row.model_dump(mode="json", exclude_none=True) for _, row in chunk],
                    "lines": [n for n, _ in chunk],
                    "ns_map": dict(ns_map or {}),
                }
                done = self._call("POST", "/import", body)
                total += ImportReport(done["rows"], done["added"], done["present"], done["seconds"])
                chunk, size = [], 0
        return total

    # -- a new model -------------------------------------------------------------------

    def rederive(
        self,
        actor: str,
        *,
        model: str | None = None,
        tokenizer: str | None = None,
        model_id: str | None = None,
        llm_model: str | None = None,
        llm_base_url: str | None = None,
        drop_old: bool = False,
    ) -> dict[str, Any]:
        """Start (or resume) a re-derivation in the service (admin); its state."""
        body = {
            "actor": actor,
            "model": model,
            "tokenizer": tokenizer,
            "model_id": model_id,
            "llm_model": llm_model,
            "llm_base_url": llm_base_url,
            "drop_old": drop_old,
        }
        state: dict[str, Any] = self._call("POST", "/rederive", body)
        return state

    def rederive_status(self) -> dict[str, Any]:
        state: dict[str, Any] = self._call("GET", "/rederive")
        return state

    def verify(self) -> LogReport:
        return report_of(self._call("GET", "/verify"))

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/stats")
        return result

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/health")
        return result

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RemoteMemory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _step_json(step: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) if k == "occurred_at" else v for k, v in step.items()}


class RemoteEpisodes:
    """`Memory.episodes` over HTTP: the same calls, the same receipts and records."""

    def __init__(self, remote: RemoteMemory) -> None:
        self._remote = remote

    def start(
        self,
        task: str,
        namespace: str,
        *,
        domain: str | None = None,
        language: str | None = None,
        tags: Sequence[str] = (),
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        body = {
            "task": task,
            "namespace": namespace,
            "domain": domain,
            "language": language,
            "tags": list(tags),
            "occurred_at": _iso(occurred_at),
            "event_id": event_id,
        }
        return receipt_of(self._remote._call("POST", "/episodes", body))

    def step(
        self,
        episode_id: str,
        tool: str,
        action: str,
        *,
        error: str | None = None,
        latency_ms: float | None = None,
        tokens: int | None = None,
        observation: str | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        body = {
            "tool": tool,
            "action": action,
            "error": error,
            "latency_ms": latency_ms,
            "tokens": tokens,
            "observation": observation,
            "occurred_at": _iso(occurred_at),
            "event_id": event_id,
        }
        return receipt_of(self._remote._call("POST", f"/episodes/{episode_id}/steps", body))

    def step_many(
        self, episode_id: str, steps: Sequence[Mapping[str, Any]]
    ) -> builtins.list[Receipt]:
        body = {"steps": [_step_json(s) for s in steps]}
        found = self._remote._call("POST", f"/episodes/{episode_id}/steps/batch", body)
        return [receipt_of(r) for r in found]

    def complete(
        self,
        episode_id: str,
        success: bool,
        *,
        score: float | None = None,
        result: str | None = None,
        error: str | None = None,
        occurred_at: datetime | str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        body = {
            "success": success,
            "score": score,
            "result": result,
            "error": error,
            "occurred_at": _iso(occurred_at),
            "event_id": event_id,
        }
        return receipt_of(self._remote._call("POST", f"/episodes/{episode_id}/complete", body))

    def get(self, episode_id: str) -> EpisodeRecord:
        return EpisodeRecord.from_json(self._remote._call("GET", f"/episodes/{episode_id}"))

    def list(
        self, namespace: str, *, domain: str | None = None, limit: int = 100, offset: int = 0
    ) -> builtins.list[EpisodeRecord]:
        found = self._remote._call(
            "GET", f"/namespaces/{namespace}/episodes", domain=domain, limit=limit, offset=offset
        )
        return [EpisodeRecord.from_json(e) for e in found]


class RemotePatterns:
    """`Memory.patterns` over HTTP."""

    def __init__(self, remote: RemoteMemory) -> None:
        self._remote = remote

    def find(
        self,
        namespace: str,
        *,
        task: str | None = None,
        error: str | None = None,
        kind: str | None = None,
        domain: str | None = None,
        k: int = 20,
    ) -> builtins.list[PatternRecord]:
        found = self._remote._call(
            "GET",
            f"/namespaces/{namespace}/patterns",
            task=task,
            error=error,
            kind=kind,
            domain=domain,
            k=k,
        )
        return [PatternRecord.from_json(p) for p in found]

    def get(self, pattern_id: str) -> PatternRecord:
        return PatternRecord.from_json(self._remote._call("GET", f"/patterns/{pattern_id}"))


class RemoteGuards:
    """`Memory.guards` over HTTP."""

    def __init__(self, remote: RemoteMemory) -> None:
        self._remote = remote

    def add(
        self,
        text: str,
        namespace: str,
        action: str = "warn",
        *,
        pattern: str | None = None,
        event_id: str | None = None,
    ) -> Receipt:
        body = {
            "text": text,
            "namespace": namespace,
            "action": action,
            "pattern": pattern,
            "event_id": event_id,
        }
        return receipt_of(self._remote._call("POST", "/guards", body))

    def remove(self, rule_id: str, namespace: str, reason: str | None = None) -> Receipt:
        body = {"rule_id": rule_id, "namespace": namespace, "reason": reason}
        return receipt_of(self._remote._call("POST", "/guards/remove", body))

    def list(self, namespace: str) -> builtins.list[GuardRule]:
        found = self._remote._call("GET", f"/namespaces/{namespace}/guards")
        return [GuardRule(**r) for r in found]

    def check(self, action: str, namespace: str, *, asked_by: str | None = None) -> GuardDecision:
        """(Who asked is the key the service sees; `asked_by` is for the embedded API.)"""
        body = {"action": action, "namespace": namespace}
        return GuardDecision.from_json(self._remote._call("POST", "/guard/check", body))


SERVER_FILE = "server.json"  # written by `mnemo serve` in the data directory it serves


def running_server(home: Path) -> RemoteMemory | None:
    """A client of the server serving `home`, if one is alive there."""
    try:
        doc = json.loads((home / SERVER_FILE).read_text())
        os.kill(int(doc["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no server, or its process is gone: httpx is not even imported
    import httpx

    try:
        httpx.get(f"{doc['url']}/health", timeout=2).raise_for_status()
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError):
        return None
    return RemoteMemory(str(doc["url"]), str(doc["token"]))
