"""Replicas as the README deploys them (issue 25): a real PostgreSQL for conversations, a real
`chroma run` server for chunks and vectors, and two `rearag serve` processes with their own
$REARAG_HOME, standing for two hosts. Clients are the `openai` SDK; every LLM node is on the
scripted server, whose generator takes SLOW_S seconds for a question containing "slowly"."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
import openai
import pytest
from fakes.chroma import chroma_server
from fakes.cli import RAGBIN
from fakes.docs import write_docs
from fakes.openai_server import Script, serve
from fakes.postgres import postgres_server
from fakes.serving import AUTH, KEY, echo_router, free_port, scripted_env, start_server

MODEL = "serve-docs"
SLOW_S = 4
LIGHTHOUSE = "Lighthouses guide ships along rocky coasts at night with a bright rotating lamp."
GLACIER = "Glaciers carve deep U-shaped valleys and leave moraines of rock behind them."
QUOKKA = "Quokkas are small smiling marsupials that live on Rottnest Island near Perth."


def host_env(tmp: Path, name: str, shared: SimpleNamespace) -> dict[str, str]:
    """One host's environment: its own home, the shared Chroma server and Postgres."""
    return {
        **scripted_env(tmp / name, shared.llm, MODEL),
        "REARAG_STORE__CHROMA_HOST": "127.0.0.1",
        "REARAG_STORE__CHROMA_PORT": str(shared.chroma_port),
        "REARAG_AGENT__CHECKPOINTER": shared.postgres,
        "REARAG_SERVE__API_KEY": KEY,
        "REARAG_SERVE__REQUEST_TIMEOUT_S": "60",
    }


def start_replica(tmp: Path, name: str, shared: SimpleNamespace):
    port = free_port()
    proc = start_server([], host_env(tmp, name, shared), port, tmp / f"{name}.log")
    return proc, f"http://127.0.0.1:{port}"


def ingest(tmp: Path, docs: Path, shared: SimpleNamespace) -> None:
    """`rearag ingest` from a third host (a home of its own) into the Chroma server."""
    env = {**os.environ, "REARAG_CONFIG": "", **host_env(tmp, "writer", shared)}
    done = subprocess.run(
        [str(RAGBIN), "ingest", str(docs), "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("replicas")
    script = Script()
    httpd, script.base = serve(script)
    script.default = echo_router([], slow_s=SLOW_S)
    docs = write_docs(tmp / "docs")
    (docs / "notes.txt").write_text(LIGHTHOUSE)
    procs = []
    with (
        postgres_server(tmp / "postgres") as postgres,
        chroma_server(tmp / "chroma") as (chroma_port, _),
    ):
        shared = SimpleNamespace(
            llm=script.base, chroma_port=chroma_port, postgres=postgres.url, server=postgres
        )
        ingest(tmp, docs, shared)
        try:
            for name in ("host-a", "host-b"):
                procs.append(start_replica(tmp, name, shared))
            [(_, a), (_, b)] = procs
            yield SimpleNamespace(a=a, b=b, tmp=tmp, docs=docs, shared=shared)
        finally:
            for proc, _ in procs:
                proc.terminate()
                proc.wait(timeout=30)
            httpd.shutdown()


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0, timeout=120)


def turn(url: str, thread: str, question: str) -> str:
    reply = client(url).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": question}],
        extra_headers={"X-Thread-Id": thread},
    )
    return reply.choices[0].message.content


def earlier(text: str) -> str:
    assert "earlier: " in text, text
    return text.split("earlier: ", 1)[1].split(")", 1)[0]


def test_each_replica_names_and_checks_its_shared_parts(replicas):
    for url, name in ((replicas.a, "host-a"), (replicas.b, "host-b")):
        health = httpx.get(url + "/health").json()
        assert [(p["holds"], p["shared"], p["reachable"]) for p in health["parts"]] == [
            ("conversations", True, True),
            ("chunks and vectors", True, True),
        ]
        log = (replicas.tmp / f"{name}.log").read_text()
        database = replicas.shared.postgres.replace("postgres@", "")
        chroma = f"chroma http://127.0.0.1:{replicas.shared.chroma_port}"
        assert f"shared: conversations in {database}, chunks and vectors in {chroma}" in log
        assert f"this replica's own: {replicas.tmp / name} (BM25 index" in log


def test_a_conversation_alternating_between_replicas_keeps_its_history(replicas):
    turn(replicas.a, "alt", "Where does lava come from? First")
    turn(replicas.b, "alt", "and magma? Second")
    turn(replicas.a, "alt", "and ash? Third")
    last = turn(replicas.b, "alt", "Where does lava come from? Fourth")
    assert earlier(last) == "Where does lava come from First | and magma Second | and ash Third"


def test_simultaneous_turns_on_two_replicas_lose_none(replicas):
    """The second replica's turn waits for the first's (a Postgres advisory lock), then reads
    the history with the first turn in it."""
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(turn, replicas.a, "both", "slowly lava? One")
        time.sleep(1)
        second = pool.submit(turn, replicas.b, "both", "and magma? Two")
        first.result()
        assert earlier(second.result()) == "slowly lava One"
    last = turn(replicas.a, "both", "Where does lava come from? Three")
    assert earlier(last) == "slowly lava One | and magma Two"


def search(url: str, query: str, mode: str, k: int = 3) -> list[str]:
    body = {"model": MODEL, "query": query, "k": k, "mode": mode}
    resp = httpx.post(url + "/v1/search", json=body, headers=AUTH, timeout=60)
    assert resp.status_code == 200, resp.text
    return [hit["text"] for hit in resp.json()["results"]]


def test_both_replicas_find_what_a_third_host_ingested(replicas):
    for url in (replicas.a, replicas.b):  # each loads its BM25 index before the change
        for mode in ("bm25", "dense", "hybrid"):
            assert "Lighthouses" in search(url, "lighthouse guiding ships at night", mode)[0]
    # An edit alone keeps the number of chunks: a replica that only compared counts missed it.
    (replicas.docs / "notes.txt").write_text(GLACIER)
    ingest(replicas.tmp, replicas.docs, replicas.shared)
    for url in (replicas.a, replicas.b):
        for mode in ("bm25", "dense", "hybrid"):
            assert "moraines" in search(url, "glacier moraine valleys", mode)[0], (url, mode)
            assert not any("Lighthouses" in t for t in search(url, "lighthouse ships", mode))
    (replicas.docs / "quokka.txt").write_text(QUOKKA)
    ingest(replicas.tmp, replicas.docs, replicas.shared)
    for url in (replicas.a, replicas.b):
        for mode in ("bm25", "dense", "hybrid"):
            assert "Quokkas" in search(url, "quokka marsupial Rottnest Island", mode)[0]


def test_a_conversations_database_that_goes_away_is_a_clear_error_then_comes_back(replicas):
    """Postgres stops (a crash, a lost network): a question on a thread is one clear 502, a
    question without a thread is still answered (it saves nothing), /health says 503; once
    the database is back, the pool reconnects and the thread goes on."""
    turn(replicas.a, "outage", "Where does lava come from? Before")
    replicas.shared.server.stop()
    try:
        with pytest.raises(openai.APIStatusError) as failed:
            turn(replicas.a, "outage", "and magma? During")
        assert failed.value.status_code == 502
        message = failed.value.body["message"]
        assert message.startswith(f"conversations database {replicas.shared.postgres[:10]}")
        assert "is PostgreSQL running" in message
        reply = client(replicas.a).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Where does lava come from?"}]
        )
        assert "Q: Where does lava come from" in reply.choices[0].message.content
        health = httpx.get(replicas.a + "/health")
        assert health.status_code == 503
        assert health.json()["parts"][0] == {
            "holds": "conversations",
            "shared": True,
            "reachable": False,
        }
    finally:
        replicas.shared.server.start()
    assert httpx.get(replicas.a + "/health").status_code == 200
    after = turn(replicas.a, "outage", "and ash? After")
    assert earlier(after) == "Where does lava come from Before"


def test_a_replica_killed_mid_answer_leaves_the_thread_usable(replicas):
    """kill -9 while a replica holds a thread's lock: Postgres frees the lock with the dead
    connection, and the other replica answers on the thread with its history whole."""
    doomed, url = start_replica(replicas.tmp, "host-c", replicas.shared)
    try:
        turn(url, "k9", "Where does lava come from? Before")
        with ThreadPoolExecutor(1) as pool:
            cut = pool.submit(turn, url, "k9", "slowly lava?")
            time.sleep(1.5)  # the slow turn holds the thread on host-c
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=30)
            with pytest.raises(openai.APIError):
                cut.result()
        after = turn(replicas.b, "k9", "and magma? After")
        assert earlier(after) == "Where does lava come from Before"
    finally:
        doomed.kill()
