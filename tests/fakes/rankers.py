"""Scripted reranking models for the scripted OpenAI-compatible server (openai_server), and a
Reranker that talks to it."""

from __future__ import annotations

import re
import threading
import time

from rearag.core.config import load_settings
from rearag.policies import Reranker


def reverse_ranker(messages):
    """A scripted model that answers in the REARANK format: the window reversed."""
    n = int(re.search(r"provide you with (\d+) passages", messages[1]["content"]).group(1))
    order = " > ".join(f"[{i}]" for i in range(n, 0, -1))
    return f"<think>the later passages look better</think><answer>{order}</answer>"


class Overlap:
    """A scripted reranker reply that takes `seconds` and counts requests in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.now, self.peak, self.calls = seconds, 0, 0, 0
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]]) -> str:
        with self.lock:
            self.now, self.calls = self.now + 1, self.calls + 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        return "[2] > [1]"


def api_reranker(base: str, **options) -> Reranker:
    return Reranker(
        "rankgpt",
        "litellm:openai/scripted",
        settings=load_settings(),
        api_base=base,
        max_retries=0,
        **options,
    )
