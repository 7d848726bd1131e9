"""`rearag serve` under the failures an adversarial run found (issue 15): text that cannot be
encoded, questions that time out or whose client leaves, half-sent requests, shutdown with a
question still running. A real server process on loopback; every LLM node on the scripted
server, whose generator takes SLOW_S seconds for a question containing "slowly"."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time
from types import SimpleNamespace

import httpx
import pytest
from fakes.cli import RAGBIN
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

MODEL = "serve-docs"
TIMEOUT_S = 6  # serve.request_timeout_s
SLOW_S = TIMEOUT_S + 3  # a "slowly" question outlives its request
CHAT = "/v1/chat/completions"


def start_rearag(tmp, script: Script, **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **scripted_env(tmp / "home", script.base, MODEL),
        "REARAG_SERVE__API_KEY": AUTH["Authorization"].split()[1],
        **{f"REARAG_SERVE__{k.upper()}": v for k, v in settings.items()},
    }
    port = free_port()
    proc = start_server([], env, port, tmp / f"serve-{port}.log")
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("reliable")
    script = Script()
    httpd, script.base = serve(script)
    script.default = echo_router([], slow_s=SLOW_S)
    ingest_docs(tmp, tmp / "home", MODEL)
    proc, url = start_rearag(
        tmp, script, request_timeout_s=str(TIMEOUT_S), header_timeout_s="1", keep_alive_s="1"
    )
    try:
        post(url, CHAT, chat_body("warm-up: lava?"), timeout=60)
        yield SimpleNamespace(url=url, tmp=tmp, script=script)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        httpd.shutdown()


def post_json(url: str, path: str, body: dict, headers: dict | None = None) -> httpx.Response:
    """As clients send JSON: ASCII, a lone surrogate as its escape (httpx's json= cannot)."""
    headers = {**AUTH, **(headers or {}), "content-type": "application/json"}
    return httpx.post(url + path, content=json.dumps(body), headers=headers, timeout=60)


def on_thread(server, thread: str, question: str, **kw) -> httpx.Response:
    return post_json(server.url, CHAT, chat_body(question, **kw), {"X-Thread-Id": thread})


def content(resp: httpx.Response) -> str:
    assert resp.status_code == 200, resp.text
    return resp.json()["choices"][0]["message"]["content"]


def wait_until_answered(server, thread: str, question: str) -> str:
    """Ask until the thread is free (409 while an earlier question still runs)."""
    deadline = time.monotonic() + 60
    while True:
        resp = on_thread(server, thread, question)
        if resp.status_code != 409 or time.monotonic() > deadline:
            return content(resp)
        time.sleep(0.5)


def test_text_that_is_not_unicode_is_422_naming_the_field(server):
    """A lone surrogate is valid JSON but no UTF-8 text: streamed, it used to kill the stream
    outside rearag's code and lock its thread for good; not streamed, a 500."""
    bad = "lava\ud800?"
    for stream in (False, True):
        error = assert_error(on_thread(server, "uni", bad, stream=stream), 422, "invalid_request")
        assert "messages[0].content" in error["message"] and "Unicode" in error["message"]
    assert_error(post_json(server.url, "/v1/search", {"query": bad}), 422)
    rerank = {"query": "q", "documents": ["a", {"text": bad}]}
    error = assert_error(post_json(server.url, "/v1/rerank", rerank), 422)
    assert "documents[1].text" in error["message"]
    assert "Q: Where does lava come from U1;" in content(
        on_thread(server, "uni", "Where does lava come from? U1")
    )


def test_a_timed_out_turn_is_not_lost(server):
    """The 504'd question's run goes on; the next question on its thread waits for it instead
    of racing it, so both turns stay in the history."""
    assert_error(on_thread(server, "lost", "slowly lava? L1"), 504, "timeout")
    second = on_thread(server, "lost", "and magma? L2")  # while the SLOW run goes on
    assert "Q: and magma L2; earlier: slowly lava L1" in content(second)
    content(on_thread(server, "lost", "Where does lava come from? L3"))
    [prompt] = [
        r["messages"][1]["content"]
        for r in server.script.requests
        if r["messages"][0]["content"] == prompts.GENERATE_SYSTEM
        and "L3" in r["messages"][1]["content"]
    ]
    turns = re.findall(r"^(user|assistant): (.*)$", prompt, re.M)
    assert [role for role, _ in turns] == ["user", "assistant", "user", "assistant"]
    assert [text for role, text in turns if role == "user"] == ["slowly lava? L1", "and magma? L2"]


def test_a_thread_is_freed_when_its_client_leaves_mid_stream(server):
    """A client gone mid-stream: the next question on its thread gets a clear 409 while the
    abandoned question still runs, then is answered: the thread is never locked for good."""
    with httpx.stream(
        "POST",
        server.url + CHAT,
        json=chat_body("slowly lava? G1", stream=True),
        headers={**AUTH, "X-Thread-Id": "gone"},
        timeout=60,
    ) as resp:
        next(resp.iter_lines())  # the stream has begun; the client leaves
    busy = on_thread(server, "gone", "and magma? G2")
    if busy.status_code == 409:
        assert "still being answered" in assert_error(busy, 409, "thread_busy")["message"]
    assert "Q: Where does lava come from G3;" in wait_until_answered(
        server, "gone", "Where does lava come from? G3"
    )


def test_half_sent_requests_are_closed(server):
    """A connection that sends half its headers (or nothing) is closed after
    serve.header_timeout_s, not held open for good."""
    port = int(server.url.rsplit(":", 1)[1])
    for sent in (b"GET /health HTTP/1.1\r\nHost: x\r\n", b""):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(sent)
            start = time.monotonic()
            assert sock.recv(100) == b""  # closed by the server
            assert time.monotonic() - start < 8


def test_http_errors_follow_the_spec(server):
    url = server.url
    wrong_method = httpx.get(url + "/v1/search", headers=AUTH)
    assert_error(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"
    nested = b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {**AUTH, "content-type": "application/json"}
    assert_error(httpx.post(url + CHAT, content=nested, headers=headers), 422, "invalid_request")
    spec = httpx.get(url + "/openapi.json").json()["paths"]
    chat_statuses = set(spec[CHAT]["post"]["responses"])
    assert {"400", "401", "404", "409", "413", "422", "500", "504"} <= chat_statuses
    assert {"401", "404"} <= set(spec["/v1/models/{model_id}"]["get"]["responses"])


def test_shutdown_ends_within_its_timeout_while_a_question_runs(tmp_path):
    """SIGTERM with a question still running: the server stops after
    serve.shutdown_timeout_s, instead of waiting for the question."""
    script = Script()
    httpd, script.base = serve(script)
    script.default = echo_router([], slow_s=120)
    ingest_docs(tmp_path, tmp_path / "home", MODEL)
    proc, url = start_rearag(tmp_path, script, request_timeout_s="300", shutdown_timeout_s="2")
    try:
        with httpx.stream(
            "POST", url + CHAT, json=chat_body("slowly lava?", stream=True), headers=AUTH
        ) as resp:
            first = next(resp.iter_lines())
            assert json.loads(first.removeprefix("data: "))["object"] == "chat.completion.chunk"
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        assert time.monotonic() - start < 15
    finally:
        proc.kill()
        httpd.shutdown()


def test_the_api_does_what_its_openapi_description_says(server):
    """Schemathesis, bounded, as a user runs it: every status is documented, every body
    matches its schema, wrong methods get 405, invalid bodies are refused."""
    run = subprocess.run(
        [
            str(RAGBIN.with_name("schemathesis")),
            "run",
            server.url + "/openapi.json",
            "--header",
            f"Authorization: {AUTH['Authorization']}",
            "--max-examples",
            "8",
            "--checks",
            "all",
            # Requests the schema allows but rearag cannot honour (n=2, a tool message, no
            # documents) are 400s naming the field, by design, and documented as such.
            "--exclude-checks",
            "positive_data_acceptance",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=server.tmp,  # its report folder
    )
    assert run.returncode == 0, run.stdout[-6000:]
