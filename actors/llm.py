"""An OpenAI-compatible chat-completions client for optional LLM extraction, on `httpx`.

One POST to ``{base_url}/chat/completions`` per memory, asking for a JSON object; a batch is
sent `concurrency` calls at a time. What the server is to blame for (5xx, 429, a dropped
connection, a timeout) is tried again, after the server's ``Retry-After`` when it sends one
(up to `max_wait`), else after a short backoff, and never waited for after the last try;
what the request is to blame for (any other 4xx) fails at once. The key comes from the
environment variable the settings name, never from a file. Works with OpenAI, Ollama
(``http://127.0.0.1:11434/v1``), vLLM, llama.cpp's server and the like.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.errors import ActorError

if TYPE_CHECKING:
    import httpx

_sleep = time.sleep  # the waits between tries (tests record them)


class LLMSettings(BaseModel):
    """The ``[llm]`` section. Extraction uses the LLM only when `base_url` and `model` are set."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    base_url: str = ""
    model: str = ""
    api_key_env: str = "MNEMO_LLM_API_KEY"
    timeout: float = Field(30.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    temperature: float = Field(0.0, ge=0, le=2)
    concurrency: int = Field(4, ge=1, le=64, description="calls in flight at once")
    max_wait: float = Field(
        30.0, ge=0, description="the longest Retry-After honoured; a longer one fails the call"
    )

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)


class LLMError(ActorError):
    """The LLM endpoint failed or answered something that is not the JSON asked for."""


class _Retry(Exception):
    """A try failed in a way worth another: the wait the server asked for, if any."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class ChatClient:
    def __init__(self, settings: LLMSettings) -> None:
        if not settings.enabled:
            raise LLMError("[llm] needs base_url and model")
        if not settings.base_url.startswith(("http://", "https://")):
            raise LLMError(f"[llm] base_url must be http(s): {settings.base_url!r}")
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"
        import httpx  # here: the settings are read by every process, the client made by few

        limits = httpx.Limits(max_connections=settings.concurrency)
        self._http: httpx.Client = httpx.Client(timeout=settings.timeout, limits=limits)

    def close(self) -> None:
        self._http.close()

    def complete_json(self, system: str, user: str) -> dict[str, Any]:
        """The model's answer parsed as a JSON object."""
        body = {
            "model": self.settings.model,
            "temperature": self.settings.temperature,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
        }
        headers = {}
        key = os.environ.get(self.settings.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        for attempt in range(self.settings.retries):
            try:
                return self._try(body, headers)
            except _Retry as retry:
                self._wait(retry, attempt)
        try:  # the last try: no wait after it
            return self._try(body, headers)
        except _Retry as retry:
            tries = self.settings.retries + 1
            raise LLMError(f"{self.url} failed after {tries} tries: {retry}") from None

    def complete_many(
        self,
        system: str,
        users: Sequence[str],
        wanted: Callable[[int], bool] | None = None,
    ) -> list[dict[str, Any] | LLMError | None]:
        """One answer per message, in order, `concurrency` calls at a time; a call that fails
        is its LLMError in its place. `wanted(i)` is asked just before message i is sent: if
        it says no (its namespace was erased meanwhile), the message is never sent and its
        place is None."""

        def one(i: int) -> dict[str, Any] | LLMError | None:
            if wanted is not None and not wanted(i):
                return None
            try:
                return self.complete_json(system, users[i])
            except LLMError as exc:
                return exc

        if len(users) <= 1 or self.settings.concurrency == 1:
            return [one(i) for i in range(len(users))]
        with ThreadPoolExecutor(min(self.settings.concurrency, len(users))) as pool:
            return list(pool.map(one, range(len(users))))

    def _try(self, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        import httpx

        try:
            response = self._http.post(self.url, json=body, headers=headers)
        except httpx.TransportError as exc:  # refused, dropped, timed out
            raise _Retry(f"{type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retry(f"HTTP {status}", _retry_after(response.headers.get("retry-after")))
        if status >= 400:
            # The error body may echo the request (the memory's text): only the status.
            raise LLMError(f"{self.url} refused the request: HTTP {status}")
        try:
            answer = response.json()
        except ValueError as exc:
            # JSONDecodeError's words name a place, never the text; the answer may echo
            # what it was sent, and errors are logged.
            raise LLMError(f"{self.url} answered something that is not JSON: {exc}") from exc
        return _content_json(answer)

    def _wait(self, retry: _Retry, attempt: int) -> None:
        if retry.wait is None:
            _sleep(min(2.0, 0.2 * 2**attempt))
        elif retry.wait > self.settings.max_wait:
            raise LLMError(
                f"{self.url} asks to wait {retry.wait:g} s ({retry}), over [llm] max_wait "
                f"({self.settings.max_wait:g} s)"
            )
        else:
            _sleep(retry.wait)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _content_json(answer: Any) -> dict[str, Any]:
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LLMError(f"not a chat-completions answer (a {_shape(answer)})") from exc
    text = str(content).strip()
    if text.startswith("```"):  # some models fence JSON even when asked not to
        text = text.strip("`").removeprefix("json").strip()
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise LLMError(f"the model's answer is not JSON ({len(text)} characters): {exc}") from exc
    if not isinstance(parsed, dict):
        raise LLMError(f"the model's answer is not a JSON object (a {_shape(parsed)})")
    return parsed


def _shape(value: Any) -> str:
    """What a value is, without any of its text: errors are logged, and a model's answer may
    echo the memory it was sent."""
    if isinstance(value, dict):
        return f"JSON object of {len(value)} keys"
    if isinstance(value, list):
        return f"JSON array of {len(value)} items"
    return type(value).__name__
