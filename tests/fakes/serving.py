"""Helpers for tests that run rearag as a server: a REARAG_HOME whose LLM nodes all talk to the
scripted OpenAI-compatible server, and a generator reply that names the question it answers,
so a test can tell whether an answer (and its conversation) belongs to its own request."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

from rearag.agent import prompts
from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

from .cli import RAGBIN
from .docs import write_docs
from .net import free_port as free_port  # re-exported: the serving tests import it from here
from .scripted_agent import GOOD, router

# The keyed server of the serve tests: its key, its one model and the requests they send.
KEY = "sk-test-0123456789"
MODEL = "serve-docs"
AUTH = {"Authorization": f"Bearer {KEY}"}


def chat_body(question: str, **extra) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": question}], **extra}


def post(url: str, path: str, body: dict, headers: dict | None = None, **kw) -> httpx.Response:
    return httpx.post(url + path, json=body, headers=AUTH if headers is None else headers, **kw)


def assert_error(resp: httpx.Response, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if code:
        assert error["code"] == code
    return error


def scripted_env(home: Path, base: str, collection: str) -> dict[str, str]:
    """Environment for a `rearag` process: its home, and every LLM node on `base`."""
    env = {
        "REARAG_HOME": str(home),
        "REARAG_COLLECTION": collection,
        "REARAG_RERANKER__POLICY": "rankgpt",
    }
    for node in ("REWRITER", "GRADER", "GENERATOR", "RERANKER"):
        env[f"REARAG_{node}__MODEL"] = "litellm:openai/scripted"
        env[f"REARAG_{node}__API_BASE"] = base
        env[f"REARAG_{node}__MAX_RETRIES"] = "0"
    return env


def ingest_docs(tmp: Path, home: Path, collection: str) -> None:
    """The docs fixture's files in `collection` under `home`, ingested in this process (whose
    embedder other tests have loaded already)."""
    settings = load_settings(home=home)
    ingest([write_docs(tmp / "docs")], Store(settings, collection, create=True), progress=False)


def echo_answer(messages: list[dict[str, str]]) -> str:
    """'<first sentence of passage 1> (Q: <question>; earlier: <earlier user turns>) [1].':
    what the generator was asked and which conversation it saw, inside a sentence its cited
    passage supports (so it passes the citation check). Sentence marks are left out of the
    echo, which must not end the sentence. A question with TWO in it gets the passage's
    sentence first, then that one."""
    user = messages[1]["content"]
    passage = re.search(r'<passage number="1">(.*?)</passage>', user, re.S)
    first = re.split(r"(?<=[.!?])\s", passage.group(1).strip())[0] if passage else ""
    question = re.search(r"Question: (.*)\n", user)
    earlier = re.findall(r"^user: (.*)$", user, re.M)
    echo = f"Q: {question.group(1) if question else ''}; earlier: {' | '.join(earlier)}"
    answer = f"{first.rstrip('.!?')} ({re.sub(r'[.!?]', '', echo)}) [1]."
    if question and "TWO" in question.group(1):  # two sentences, for streaming tests
        return f"{first.rstrip('.!?')} [1]. {answer}"
    return answer


def echo_router(seen: list[str], slow_s: float = 0.0):
    """The scripted_agent router with the echoing generator; a question containing "slowly" (not an
    earlier turn) makes the generator take `slow_s` seconds."""
    base = router({**GOOD, "generate": echo_answer}, seen)

    def reply(messages: list[dict[str, str]]) -> str:
        question = re.search(r"Question: (.*)", messages[1]["content"])
        if messages[0]["content"] == prompts.GENERATE_SYSTEM and "slowly" in question.group(1):
            time.sleep(slow_s)
        return base(messages)

    return reply


def start_server(
    args: list[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    """`rearag serve ARGS --port PORT` in the background, once /health answers."""
    out = log.open("wb")
    proc = subprocess.Popen(
        [str(RAGBIN), "serve", *args, "--port", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "REARAG_CONFIG": "", **env},
        cwd=log.parent,  # no stray rearag.toml
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rearag serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise AssertionError(f"rearag serve did not start:\n{log.read_text()}")
