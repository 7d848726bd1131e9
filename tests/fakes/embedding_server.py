"""An OpenAI-compatible embeddings server on 127.0.0.1 that serves the bundled MiniLM's
vectors, for tests of embedders behind an API (litellm)."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from rearag.tools.embedder import load_sentence_transformer

MINILM = "local:all-minilm-l6-v2"


class EmbeddingServer(ThreadingHTTPServer):
    """`POST /v1/embeddings` in OpenAI's shape with the bundled MiniLM's vectors. Knobs for the
    tests: `size` cuts the vectors, `fail` answers that many requests with 503; `requests`
    records each request's input count and `busy_max` the most requests served at once."""

    size: int | None = None
    fail = 0
    requests: list[int]
    busy = busy_max = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: EmbeddingServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.requests.append(len(body["input"]))
            server.busy += 1
            server.busy_max = max(server.busy_max, server.busy)
            failing = server.fail > 0
            server.fail -= failing
        try:
            if failing:
                return self._send(503, {"error": {"message": "busy, try again"}})
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            time.sleep(0.05)  # long enough for parallel requests to overlap
            vectors = load_sentence_transformer(MINILM).encode(texts)[:, : server.size]
            data = [
                {"object": "embedding", "index": i, "embedding": _encoded(v, body)}
                for i, v in enumerate(vectors)
            ]
            usage = {"prompt_tokens": 0, "total_tokens": 0}
            self._send(
                200, {"object": "list", "data": data, "model": body["model"], "usage": usage}
            )
        finally:
            with server.lock:
                server.busy -= 1

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def _encoded(vector: np.ndarray, body: dict[str, Any]) -> Any:
    # The OpenAI client asks for base64 (little-endian float32) unless told otherwise.
    if body.get("encoding_format") == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


def serve_embeddings() -> EmbeddingServer:
    """A running server on a free loopback port; `shutdown()` it when done."""
    srv = EmbeddingServer(("127.0.0.1", 0), Handler)
    srv.requests = []
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown
    return srv


def api_base(server: EmbeddingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"
