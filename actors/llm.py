"""An OpenAI-compatible chat-completions client for optional LLM extraction.

Standard library only (urllib): one POST to ``{base_url}/chat/completions`` asking for a JSON
object. The key comes from the environment variable the settings name, never from a file.
Works with OpenAI, Ollama (``http://127.0.0.1:11434/v1``), vLLM, llama.cpp's server and the like.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mnemoflow.actors.errors import ActorError


class LLMSettings(BaseModel):
    """The ``[llm]`` section. Extraction uses the LLM only when `base_url` and `model` are set."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    base_url: str = ""
    model: str = ""
    api_key_env: str = "MNEMO_LLM_API_KEY"
    timeout: float = Field(30.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    temperature: float = Field(0.0, ge=0, le=2)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.model)


class LLMError(ActorError):
    """The LLM endpoint failed or answered something that is not the JSON asked for."""


class ChatClient:
    def __init__(self, settings: LLMSettings) -> None:
        if not settings.enabled:
            raise LLMError("[llm] needs base_url and model")
        if not settings.base_url.startswith(("http://", "https://")):
            raise LLMError(f"[llm] base_url must be http(s): {settings.base_url!r}")
        self.settings = settings
        self.url = settings.base_url.rstrip("/") + "/chat/completions"

    def complete_json(self, system: str, user: str) -> dict[str, Any]:
        """The model's answer parsed as a JSON object; retried on transport errors."""
        body = json.dumps(
            {
                "model": self.settings.model,
                "temperature": self.settings.temperature,
                "response_format": {"type": "json_object"},
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.settings.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last: Exception | None = None
        for attempt in range(self.settings.retries + 1):
            # The scheme is checked in __init__: http(s) only.
            request = urllib.request.Request(self.url, body, headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:  # noqa: S310
                    answer = json.loads(response.read())
                return _content_json(answer)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
                time.sleep(min(2.0, 0.2 * 2**attempt))
            except ValueError as exc:
                # JSONDecodeError's words name a place, never the text; the answer may echo
                # what it was sent, and errors are logged.
                raise LLMError(f"{self.url} answered something that is not JSON: {exc}") from exc
        raise LLMError(f"{self.url} failed after {self.settings.retries + 1} tries: {last}")


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
