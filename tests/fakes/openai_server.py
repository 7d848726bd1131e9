"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests of the litellm path.

Each request pops the next scripted behaviour: a reply text (or a function of the request's
messages), an HTTP error status, or a delay longer than the client's timeout. When the script
is empty it replies with `default`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = str | Callable[[list[dict[str, str]]], str]


class Script:
    def __init__(self, default: Reply = "ok") -> None:
        self.steps: list[tuple[str, Any]] = []
        self.default = default
        self.requests: list[dict[str, Any]] = []
        # Seconds between streamed words, so a test can watch a reply arrive piece by piece.
        self.word_delay_s = 0.0
        self.lock = threading.Lock()

    def reply(self, text: Reply) -> Script:
        self.steps.append(("reply", text))
        return self

    def status(self, code: int) -> Script:
        self.steps.append(("status", code))
        return self

    def sleep(self, seconds: float) -> Script:
        self.steps.append(("sleep", seconds))
        return self

    def next(self, body: dict[str, Any]) -> tuple[str, Any]:
        with self.lock:
            self.requests.append(body)
            return self.steps.pop(0) if self.steps else ("reply", self.default)


def serve(script: Script) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            kind, value = script.next(body)
            if kind == "sleep":
                time.sleep(value)
                kind, value = "reply", script.default
            if kind == "reply" and callable(value):
                try:
                    value = value(body["messages"])
                except Exception:  # a scripted failure: answer as a broken server would
                    kind, value = "status", 500
            if kind == "status":
                payload = json.dumps(
                    {"error": {"message": f"scripted {value}", "type": "server_error"}}
                ).encode()
                self.send_response(value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            text = value
            if body.get("stream"):
                self._sse(body, text)
                return
            payload = json.dumps(
                {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _sse(self, body: dict[str, Any], text: str) -> None:
            """The reply as server-sent events, one word a chunk, as OpenAI streams."""
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            words = text.split(" ") if text else []
            for i, word in enumerate(words):
                last = i == len(words) - 1
                chunk = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": word if last else word + " "},
                            "finish_reason": "stop" if last else None,
                        }
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(script.word_delay_s)
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 11, "completion_tokens": len(words)}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                chunk = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": body.get("model", "test"),
                    "choices": [],
                    "usage": usage,
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval: shutdown() returns within 0.05 s, not serve_forever's 0.5 s.
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
