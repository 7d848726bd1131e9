"""One conversation written by several processes on one $REARAG_HOME (issue 25): two
`rearag serve`, a server with `--workers 2`, `rearag ask --thread` beside a server, Ctrl-C of
that CLI, `rearag threads delete` during a turn. Each must end with every answered turn in the
thread exactly once, in order, and a deleted thread must stay deleted. Real server processes
on loopback; every LLM node on the scripted server, whose generator takes SLOW_S seconds for a
question containing "slowly" and LONG_S for one containing "lingering" (longer than a CLI
takes to start), so the turns overlap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from fakes.cli import RAGBIN, rearag
from fakes.openai_server import Script, serve
from fakes.serving import (
    AUTH,
    assert_error,
    chat_body,
    echo_router,
    free_port,
    ingest_docs,
    post,
    scripted_env,
    start_server,
)

from rearag.agent import prompts
from rearag.agent.thread_store import SqliteThreads, sqlite_checkpointer
from rearag.core.config import load_settings

MODEL = "serve-docs"
SLOW_S = 4
LONG_S = 15
CHAT = "/v1/chat/completions"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    """Two servers and a server with two workers on one home, and the environment for CLIs."""
    tmp = tmp_path_factory.mktemp("shared")
    script = Script()
    httpd, script.base = serve(script)
    slow = echo_router([], slow_s=SLOW_S)
    lingering: list[str] = []  # the questions whose generator call is under way

    def reply(messages: list[dict[str, str]]) -> str:
        question = messages[1]["content"].split("Question: ", 1)[-1].split("\n", 1)[0]
        if messages[0]["content"] == prompts.GENERATE_SYSTEM and "lingering" in question:
            lingering.append(question)
            time.sleep(LONG_S)
            lingering.remove(question)
        return slow(messages)

    script.default = reply
    ingest_docs(tmp, tmp / "home", MODEL)
    env = {
        **scripted_env(tmp / "home", script.base, MODEL),
        "REARAG_SERVE__API_KEY": AUTH["Authorization"].split()[1],
        # Long enough for a turn to wait for another process's SLOW one.
        "REARAG_SERVE__REQUEST_TIMEOUT_S": "60",
    }
    procs, urls = [], []
    for args in ([], [], ["--workers", "2"]):
        port = free_port()
        procs.append(start_server(args, env, port, tmp / f"serve-{port}.log"))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        yield SimpleNamespace(a=urls[0], b=urls[1], workers=urls[2], env=env, lingering=lingering)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        httpd.shutdown()


def turn(url: str, thread: str, question: str) -> httpx.Response:
    return post(url, CHAT, chat_body(question), {**AUTH, "X-Thread-Id": thread}, timeout=120)


def answer(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["message"]["content"]


def messages(home, thread: str) -> int | None:
    """The thread's message count as `rearag threads list` reports it; None when it is gone."""
    listed = rearag("threads", "list", "--json", env=home.env)
    assert listed.returncode == 0, listed.stderr
    counts = {t["thread_id"]: t["messages"] for t in json.loads(listed.stdout)}
    return counts.get(thread)


def earlier_turns(home, thread: str) -> str:
    """The earlier user turns the generator saw for one more question on `thread` (words only:
    a name such as "u2" that no passage mentions would make the grade abstain)."""
    text = answer(turn(home.a, thread, "Where does lava come from? Last"))
    assert "earlier: " in text, text
    return text.split("earlier: ", 1)[1].split(")", 1)[0]


def cli_ask(home, question: str, thread: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(RAGBIN), "ask", question, "--thread", thread],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **home.env},
        # Ctrl-C as a terminal delivers it: tests started in the background (`make test &`)
        # ignore SIGINT, and the CLI would inherit that and answer to the end.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def test_two_servers_on_one_home_keep_both_turns(home):
    """Two simultaneous turns of one thread on two servers: the second waits for the first
    (it used to read the same history and overwrite the first's turn)."""
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(turn, home.a, "two", "slowly lava? T1")
        time.sleep(1)  # T1 runs on server A
        second = pool.submit(turn, home.b, "two", "and magma? T2")
        answer(first.result())
        assert "earlier: slowly lava T1" in answer(second.result())
    assert messages(home, "two") == 4
    assert earlier_turns(home, "two") == "slowly lava T1 | and magma T2"


def test_workers_of_one_server_keep_every_answered_turn(home):
    """`--workers 2`: simultaneous turns land in either worker process; each turn answered is
    in the thread once (a refused one is a 409, never a lost turn)."""
    questions = [f"slowly lava? W{i}" for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda q: turn(home.workers, "workers", q), questions))
    assert {r.status_code for r in replies} <= {200, 409}
    answered = [q for q, r in zip(questions, replies, strict=True) if r.status_code == 200]
    assert answered
    assert messages(home, "workers") == 2 * len(answered)


def test_cli_ask_beside_a_server_keeps_both_turns(home):
    answer(turn(home.a, "cli1", "Where does lava come from? C0"))
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(turn, home.a, "cli1", "lingering lava? C1")
        time.sleep(1)  # C1 runs on the server while the CLI starts
        cli = cli_ask(home, "and magma? C2", "cli1")
        out, err = cli.communicate(timeout=120)
        assert cli.returncode == 0, err
        answer(served.result())
    assert "earlier: Where does lava come from C0 | lingering lava C1" in out
    assert messages(home, "cli1") == 6


def test_ctrl_c_of_the_cli_undoes_only_its_own_turn(home):
    """SIGINT to `rearag ask --thread` mid-answer, after a server's turn on the same thread:
    the CLI's unfinished turn goes, the server's and the earlier ones stay (the undo used to
    delete every checkpoint newer than the CLI's start, the server's included)."""
    answer(turn(home.a, "u2", "Where does lava come from? U0"))
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(turn, home.a, "u2", "lingering lava? U1")
        time.sleep(1)
        cli = cli_ask(home, "lingering magma? U2", "u2")  # starts during U1
        answer(served.result())
        # Mid-answer: its generator call is under way, whatever the machine's speed.
        deadline = time.monotonic() + 60
        while not any("U2" in q for q in home.lingering) and time.monotonic() < deadline:
            assert cli.poll() is None, cli.communicate()
            time.sleep(0.1)
        cli.send_signal(signal.SIGINT)
        cli.communicate(timeout=60)
        assert cli.returncode == 130
    assert messages(home, "u2") == 4
    assert earlier_turns(home, "u2") == "Where does lava come from U0 | lingering lava U1"


def test_a_thread_deleted_during_a_turn_stays_deleted(home):
    answer(turn(home.a, "del1", "My secret code is 4711. Where does lava come from?"))
    with ThreadPoolExecutor(1) as pool:
        served = pool.submit(turn, home.b, "del1", "slowly lava? D1")
        time.sleep(1)
        deleted = rearag("threads", "delete", "del1", env=home.env)  # waits for D1
        assert deleted.returncode == 0, deleted.stderr
        assert served.result().status_code == 200
    assert messages(home, "del1") is None
    assert "4711" not in answer(turn(home.a, "del1", "What was my code?"))
    assert messages(home, "del1") == 2  # a new conversation, without the secret


def test_a_turn_held_by_another_process_is_409_before_the_request_times_out(home, tmp_path):
    """Another process holds the thread past this server's request timeout: the client gets
    409 thread_busy, not a 504 raced against it (both used to wait the same time)."""
    env = {**home.env, "REARAG_SERVE__REQUEST_TIMEOUT_S": "3"}
    port = free_port()
    hurried = start_server([], env, port, tmp_path / "hurried.log")
    settings = load_settings(home=Path(home.env["REARAG_HOME"]))
    store = SqliteThreads(sqlite_checkpointer(settings), settings)
    try:
        with store.lock("held", 1.0):
            for _ in range(3):
                busy = turn(f"http://127.0.0.1:{port}", "held", "Where does lava come from?")
                assert_error(busy, 409, "thread_busy")
    finally:
        store.close()
        hurried.terminate()
        hurried.wait(timeout=30)
