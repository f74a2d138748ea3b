"""A chat-completions endpoint on loopback, for tests of the LLM extractor (in-process and
in the service's Ray actors)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ChatServer:
    """A chat-completions endpoint on loopback that answers with a canned JSON object."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answer: object = {}
        self.reply: bytes | None = None  # the whole body, when not a chat-completions answer
        self.status = 200
        self.on_request: Callable[[dict[str, Any]], None] | None = None  # before answering
        # (status, headers) for the next requests, first first; then `status`
        self.script: list[tuple[int, dict[str, str]]] = []
        self.delay = 0.0  # seconds each answer takes
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                with outer._lock:
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                    status, extra = outer.script.pop(0) if outer.script else (outer.status, {})
                try:
                    self._answer(status, extra)
                finally:
                    with outer._lock:
                        outer.in_flight -= 1

            def _answer(self, status: int, extra: dict[str, str]) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                time.sleep(outer.delay)
                if outer.on_request is not None:
                    outer.on_request(body)
                content = (
                    outer.answer if isinstance(outer.answer, str) else json.dumps(outer.answer)
                )
                reply = (
                    outer.reply
                    or json.dumps(
                        {"choices": [{"message": {"role": "assistant", "content": content}}]}
                    ).encode()
                )
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


LLM_ANSWER = {
    "facts": ["Alice moved to Berlin.", "Alice works at Acme."],
    "entities": [{"text": "Acme", "type": "organisation"}, {"text": "Berlin", "type": "place"}],
    "category": "personal",
    "claim": {
        "subject": "Alice",
        "attribute": "residence",
        "value": "Berlin",
        "negated": False,
        "single_valued": True,
    },
}
