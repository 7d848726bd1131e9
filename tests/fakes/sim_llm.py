"""SIMULATION: an OpenAI-compatible chat-completions server on 127.0.0.1 whose "model" is a
listwise reranker that reads the answers from a collection's qrels.

It exists to measure reranking *strategies* (how many calls, in how many sequential rounds,
with how much text) without a GPU or an API key; it says nothing about how well a real model
ranks. Each request:

- finds the query and the passages in the prompt rearag's listwise policies write
  (`rearag.policies.prompts.listwise_messages`: the query after "search query: " in the first
  user turn, one user turn `[i] passage` per passage) and maps each passage back to its
  document through the shown text;
- orders them by qrels grade, best first, ties in input order, then swaps adjacent items
  with probability `noise` (each item moves at most one place per pass), from a random stream
  seeded by (seed, query, window), so a window always gets the same answer whatever the
  thread timing;
- answers `<think>…</think><answer>[i] > [j] > …</answer>` with `think_tokens` of filler
  reasoning, ± `think_jitter` of it (uniform, seeded the same way: real reasoning lengths
  vary, and a round of concurrent windows waits for its longest), honouring `stop` (cut
  before it, as OpenAI does) and `max_tokens`;
- sleeps `Latency.seconds(prompt, completion) * time_scale` before replying. Requests run in
  their own threads, so concurrent requests overlap in time as on a hosted API; the peak
  number in flight is recorded.

Tokens are counted as characters / 4, rounded up.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rearag.policies.prompts import clean_passage

_PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.DOTALL)
_QUERY_MARK = "search query: "
_CUT = " …"  # what clean_passage appends to a shortened passage
# Characters of a shown passage used to find its candidate documents before comparing whole
# texts. clean_passage keeps more than max_chars // 2 of a passage it cuts, so every passage
# shows at least this many (or all of a shorter document) when max_passage_chars >= 40.
_KEY_CHARS = 20


def count_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


@dataclass(frozen=True)
class Latency:
    """Seconds one request takes: fixed overhead (network, queueing, time to first token)
    plus prefill per prompt token plus decoding per generated token."""

    overhead_s: float = 0.3
    prompt_token_s: float = 0.02e-3
    output_token_s: float = 15e-3

    def seconds(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            self.overhead_s
            + prompt_tokens * self.prompt_token_s
            + completion_tokens * self.output_token_s
        )


class Judgments:
    """Grades of the passages a prompt shows, for the query it names."""

    def __init__(
        self,
        queries: Mapping[str, str],
        docs: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
    ) -> None:
        self.qrels = {
            clean_passage(text, 1000): qrels.get(qid, {}) for qid, text in queries.items()
        }
        self._docs: dict[str, list[tuple[str, str]]] = {}
        for did, text in docs.items():
            shown = clean_passage(text, 10**9)
            self._docs.setdefault(shown[:_KEY_CHARS], []).append((did, shown))

    def doc_ids(self, passage: str) -> list[str]:
        """Documents whose text starts with the shown passage: several only for documents
        that are identical as far as the prompt shows them (a model can't tell them apart)."""
        shown = passage.removesuffix(_CUT)
        return [
            did for did, full in self._docs.get(shown[:_KEY_CHARS], []) if full.startswith(shown)
        ]

    def grades(self, query: str, passages: list[str]) -> tuple[list[int], int]:
        """Each passage's grade (the best of its documents', 0 if unjudged), and how many
        passages matched no document or query (0 when the harness set things up right)."""
        qrels = self.qrels.get(query)
        if qrels is None:
            return [0] * len(passages), len(passages)
        ids = [self.doc_ids(p) for p in passages]
        grades = [max((qrels.get(d, 0) for d in found), default=0) for found in ids]
        return grades, sum(not found for found in ids)


@dataclass
class Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    seconds: float  # simulated, before time_scale


class SimLLM:
    def __init__(
        self,
        judgments: Judgments,
        *,
        noise: float = 0.0,
        seed: int = 0,
        think_tokens: int = 200,
        think_jitter: float = 0.0,
        latency: Latency | None = None,
        time_scale: float = 1.0,
    ) -> None:
        self.judgments = judgments
        self.noise = noise
        self.seed = seed
        self.think_tokens = think_tokens
        self.think_jitter = think_jitter
        self.latency = latency or Latency()
        self.time_scale = time_scale
        self._lock = threading.Lock()
        self.requests = self.in_flight = self.peak_in_flight = self.unknown_passages = 0

    def reset_stats(self) -> None:
        with self._lock:
            self.requests = self.peak_in_flight = self.unknown_passages = 0

    def order(self, query: str, passages: list[str]) -> list[int]:
        """0-based window positions, best first: by grade, then noisy adjacent swaps."""
        grades, unknown = self.judgments.grades(query, passages)
        with self._lock:
            self.unknown_passages += unknown
        order = sorted(range(len(passages)), key=lambda i: (-grades[i], i))
        rng = self._rng("order", query, passages)
        i = 0
        while i < len(order) - 1:
            if rng.random() < self.noise:
                order[i], order[i + 1] = order[i + 1], order[i]
                i += 2  # the swapped item is not carried further down
            else:
                i += 1
        return order

    def _rng(self, purpose: str, query: str, passages: list[str]) -> random.Random:
        """A stream fixed by (seed, purpose, query, window), whatever the thread timing."""
        key = json.dumps([self.seed, purpose, query, passages]).encode()
        return random.Random(hashlib.sha256(key).digest())

    def reply(
        self, messages: list[dict[str, Any]], max_tokens: int | None, stop: list[str]
    ) -> Reply:
        query, passages = _read_prompt(messages)
        ranking = " > ".join(f"[{i + 1}]" for i in self.order(query, passages))
        spread = self.think_jitter * self._rng("think", query, passages).uniform(-1, 1)
        think = _filler(round(self.think_tokens * (1 + spread)))
        text = f"<think>{think}</think>\n<answer>{ranking}</answer>"
        finish = "stop"
        cuts = [text.index(s) for s in stop if s and s in text]
        if cuts:
            text = text[: min(cuts)]
        if max_tokens is not None and count_tokens(text) > max_tokens:
            text, finish = text[: max_tokens * 4], "length"
        prompt_tokens = count_tokens("".join(str(m.get("content", "")) for m in messages))
        completion_tokens = count_tokens(text)
        seconds = self.latency.seconds(prompt_tokens, completion_tokens)
        return Reply(text, prompt_tokens, completion_tokens, finish, seconds)

    def handle(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat completion, taking the simulated time (scaled) in the calling thread."""
        began = time.perf_counter()
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            stop = body.get("stop") or []
            reply = self.reply(
                body["messages"], body.get("max_tokens"), [stop] if isinstance(stop, str) else stop
            )
            # The reply's own computing time counts toward the simulated time.
            time.sleep(max(0.0, reply.seconds * self.time_scale - (time.perf_counter() - began)))
        finally:
            with self._lock:
                self.in_flight -= 1
        return {
            "id": "chatcmpl-sim",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "sim"),
            "choices": [
                {
                    "index": 0,
                    "finish_reason": reply.finish_reason,
                    "message": {"role": "assistant", "content": reply.text},
                }
            ],
            "usage": {
                "prompt_tokens": reply.prompt_tokens,
                "completion_tokens": reply.completion_tokens,
                "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            },
        }


def _read_prompt(messages: list[dict[str, Any]]) -> tuple[str, list[str]]:
    query, passages = "", []
    for m in messages:
        content = str(m.get("content", ""))
        if m.get("role") != "user":
            continue
        if not query and _QUERY_MARK in content:
            query = content.split(_QUERY_MARK, 1)[1]
        elif match := _PASSAGE.match(content):
            passages.append(match.group(2))
    return query, passages


def _filler(tokens: int) -> str:
    """`tokens` tokens (chars / 4) of reasoning-like text without digits or tags."""
    sentence = "Weighing each passage against the query terms and the question asked. "
    return (sentence * (tokens * 4 // len(sentence) + 1))[: tokens * 4].strip()


def serve(sim: SimLLM) -> tuple[ThreadingHTTPServer, str]:
    """Start the server in a daemon thread; returns it and its base URL (…/v1)."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            if not self.path.endswith("/chat/completions") or body.get("stream"):
                self._send(404, {"error": {"message": "only non-streamed chat completions"}})
                return
            self._send(200, sim.handle(body))

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/v1"
