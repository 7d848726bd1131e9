"""Conversation threads, in checkpoints.sqlite and in a real PostgreSQL (each test runs on
both): one checkpoint per thread by default, a failed run undone, one turn of a thread at a
time, and `rearag threads list|delete|prune` as a user runs them. The agent runs on the fake
tools of tests/fakes/agent_tools.py (no Chroma, no LLM)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from fakes.agent_tools import QUESTION, make_tools
from fakes.cli import assert_one_line_error, rearag
from fakes.net import free_port
from fakes.postgres import postgres_server

from rearag.agent.rag import RAGAgent
from rearag.agent.thread_store import (
    SqliteThreads,
    checkpoints_path,
    open_checkpointer,
    postgres_unusable,
    postgres_where,
    sqlite_checkpointer,
)
from rearag.agent.threads import delete_threads, prune_threads
from rearag.core.config import Settings, load_settings
from rearag.core.errors import BackendError, InvalidInputError, ThreadBusy
from rearag.core.sanitize import neutralise


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory):
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield server.url


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings of an empty home, conversations in SQLite or in a new Postgres database
    (also for the CLI these tests run: REARAG_AGENT__CHECKPOINTER)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres")
        name = f"t_{uuid.uuid4().hex}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        monkeypatch.setenv("REARAG_AGENT__CHECKPOINTER", url.rsplit("/", 1)[0] + "/" + name)
    return load_settings()


def agent_on(settings: Settings, keep: str = "latest") -> RAGAgent:
    settings = settings.model_copy(
        update={"agent": settings.agent.model_copy(update={"keep_checkpoints": keep})}
    )
    return RAGAgent(settings, tools=make_tools(settings), checkpointer=open_checkpointer(settings))


def stored(settings: Settings, table: str = "checkpoints") -> dict[str, int]:
    """Rows per thread in the checkpoints table or the pending writes table."""
    query = "SELECT thread_id, COUNT(*) FROM {} GROUP BY thread_id"
    where = settings.agent.checkpointer
    if where == "sqlite":
        with sqlite3.connect(checkpoints_path(settings)) as conn:
            return dict(conn.execute(query.format(table)).fetchall())
    with psycopg.connect(where) as conn:
        name = {"writes": "checkpoint_writes"}.get(table, table)
        return dict(conn.execute(query.format(name)).fetchall())


def history(agent: RAGAgent, thread_id: str) -> list[str]:
    state = agent.graph.get_state({"configurable": {"thread_id": thread_id}}).values
    return [turn["content"] for turn in state.get("history", [])]


def test_one_checkpoint_per_thread_and_the_conversation_goes_on(settings):
    agent = agent_on(settings)
    first = agent.ask(QUESTION, thread_id="t1").answer
    assert stored(settings) == {"t1": 1}
    [*_, (_, last)] = agent.stream("and where is the magma?", thread_id="t1")
    second = last["answer"].answer
    third = agent.ask("and the ash?", thread_id="t1").answer
    agent.ask(QUESTION, thread_id="t2")
    agent.ask("a question without a thread")  # no one can continue it: nothing kept
    assert stored(settings) == {"t1": 1, "t2": 1} and stored(settings, "writes") == {}
    turns = [QUESTION, first, "and where is the magma?", second, "and the ash?", third]
    assert history(agent, "t1") == turns
    # After a restart, the next turn is rewritten with the earlier ones.
    again = agent_on(settings)
    again.ask("and how hot is it?", thread_id="t1")
    rewrite_prompt = again.tools.rewriter.calls[-1][0][1]["content"]
    assert "and the ash?" in rewrite_prompt and neutralise(third) in rewrite_prompt
    assert history(again, "t1")[:6] == turns and stored(settings) == {"t1": 1, "t2": 1}


def test_keep_all_keeps_every_step_until_pruned(settings):
    agent = agent_on(settings, keep="all")
    agent.ask(QUESTION, thread_id="t1")
    first = stored(settings)["t1"]
    agent.ask("and where is the magma?", thread_id="t1")
    total = stored(settings)["t1"]
    assert first > 1 and total > first  # a checkpoint per step
    agent.threads.close()
    report = prune_threads(settings)
    assert report.checkpoints_removed == total - 1 and report.threads_removed == 0
    assert stored(settings) == {"t1": 1} and stored(settings, "writes") == {}
    assert report.bytes_after < report.bytes_before
    # The pruned thread goes on from its history.
    again = agent_on(settings, keep="all")
    again.ask("and the ash?", thread_id="t1")
    assert "and where is the magma?" in again.tools.rewriter.calls[-1][0][1]["content"]
    assert history(again, "t1")[0::2] == [QUESTION, "and where is the magma?", "and the ash?"]


def test_a_failed_run_leaves_the_thread_as_it_was(settings):
    agent = agent_on(settings)
    answer = agent.ask(QUESTION, thread_id="t1").answer

    def down(query: str, k: int = 10, where=None):
        raise BackendError("the store is down")

    search, agent.tools.retriever.search = agent.tools.retriever.search, down
    with pytest.raises(BackendError):
        agent.ask("a question that fails", thread_id="t1")
    with pytest.raises(BackendError):
        list(agent.stream("a streamed one that fails", thread_id="t1"))
    agent.tools.retriever.search = search
    # A stream given up before its answer (a client gone) is undone too ...
    events = agent.stream("a question no one waits for", thread_id="t1")
    next(events)
    events.close()
    assert history(agent, "t1") == [QUESTION, answer] and stored(settings) == {"t1": 1}
    # ... but not one given up once it has the answer.
    for node, _ in agent.stream("and the magma?", thread_id="t1"):
        if node == "answer":
            break
    assert history(agent, "t1")[::2] == [QUESTION, "and the magma?"]


@pytest.fixture
def filled(settings) -> Settings:
    """checkpoints.sqlite as an older version left it: every step kept, and a question asked
    without a thread kept too."""
    agent = agent_on(settings, keep="all")
    for thread, turns in (("volcanoes", 2), ("bread", 1)):
        for _ in range(turns):
            agent.ask(QUESTION, thread_id=thread)
    agent.ask(QUESTION, thread_id=f"once-{uuid.uuid4()}")
    agent.threads.close()
    return settings


@pytest.mark.slow  # the CLI in subprocesses
def test_threads_cli(filled):
    before = stored(filled)
    listed = rearag("threads", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    threads = {t["thread_id"]: t for t in json.loads(listed.stdout)}
    assert set(threads) == set(before) and len(threads) == 3
    volcanoes = threads["volcanoes"]
    assert volcanoes["messages"] == 4 and volcanoes["checkpoints"] == before["volcanoes"]
    assert set(volcanoes) == {"thread_id", "messages", "checkpoints", "last_active"}
    assert re.search(r"^volcanoes +4 message\(s\) ", rearag("threads", "list").stdout, re.M)

    assert_one_line_error(rearag("threads", "delete", "bread", "volcano"), "did you mean volcanoes")
    assert set(stored(filled)) == set(before)  # none deleted when one is unknown
    deleted = rearag("threads", "delete", "bread", "--json")
    assert deleted.returncode == 0 and json.loads(deleted.stdout) == {"deleted": ["bread"]}

    pruned = rearag("threads", "prune", "--json")
    assert pruned.returncode == 0, pruned.stderr
    report = json.loads(pruned.stdout)
    assert report["checkpoints_removed"] == sum(before.values()) - before["bread"] - 1
    assert report["threads_removed"] == 1  # the one without a thread id
    assert report["bytes_after"] < report["bytes_before"]
    assert stored(filled) == {"volcanoes": 1}
    # The thread goes on after the pruning.
    agent = agent_on(filled)
    agent.ask("and where is the magma?", thread_id="volcanoes")
    assert len(history(agent, "volcanoes")) == 6

    assert rearag("threads", "prune", "--older-than", "1").stdout.startswith("0 checkpoint(s)")
    old = rearag("threads", "prune", "--older-than", "0", "--json")
    assert json.loads(old.stdout)["threads_removed"] == 1 and stored(filled) == {}


@pytest.mark.slow  # the CLI in subprocesses
def test_threads_cli_without_a_checkpoints_file(home: Path):
    assert json.loads(rearag("threads", "list", "--json").stdout) == []
    assert rearag("threads", "list").stdout.strip() == "no threads"
    assert_one_line_error(rearag("threads", "delete", "nope"), "no thread 'nope'")
    assert json.loads(rearag("threads", "prune", "--json").stdout)["checkpoints_removed"] == 0
    assert not home.exists() or not (home / "checkpoints.sqlite").exists()


@pytest.mark.slow  # the CLI in subprocesses
def test_threads_cli_on_a_damaged_checkpoints_file(home: Path):
    home.mkdir(parents=True, exist_ok=True)
    (home / "checkpoints.sqlite").write_bytes(b"not sqlite at all" * 100)
    for command in (["list"], ["delete", "t1"], ["prune"]):
        assert_one_line_error(rearag("threads", *command), "move it aside")
    assert (home / "checkpoints.sqlite").read_bytes() == b"not sqlite at all" * 100  # kept


def test_an_agent_on_a_damaged_checkpoints_file_is_one_clear_error(home: Path):
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    checkpoints_path(settings).write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(BackendError, match="move it aside"):
        RAGAgent(settings, tools=make_tools(settings))


def test_a_blank_thread_id_is_no_thread_and_a_long_one_is_refused(settings):
    # `--thread ""` (CLI, MCP) left a `once-…` thread forever; MCP took 200,000 characters.
    agent = agent_on(settings)
    for blank in ("", "   "):
        answer = agent.ask(QUESTION, thread_id=blank)
        assert answer.thread_id is None
    assert stored(settings) == {}
    with pytest.raises(
        InvalidInputError, match="the thread id is 201 characters; the limit is 200"
    ):
        agent.ask(QUESTION, thread_id="t" * 201)
    agent.ask(QUESTION, thread_id="t" * 200)
    assert stored(settings) == {"t" * 200: 1}


def slowed(agent: RAGAgent, seconds: float, started: threading.Event) -> RAGAgent:
    """`agent`, its search taking `seconds` (and saying when it began)."""
    search = agent.tools.retriever.search

    def slow(query: str, k: int = 10, where=None):
        started.set()
        time.sleep(seconds)
        return search(query, k, where)

    agent.tools.retriever.search = slow
    return agent


def test_two_agents_on_one_thread_take_turns_and_lose_none(settings):
    # Two processes (here: two agents with their own connections) answering on one thread: the
    # second read the history before the first wrote it, and the first turn was lost.
    started = threading.Event()
    first = slowed(agent_on(settings), 0.5, started)
    second = agent_on(settings)
    done = threading.Thread(target=first.ask, args=(QUESTION,), kwargs={"thread_id": "t1"})
    done.start()
    started.wait(5)
    second.ask("and the magma?", thread_id="t1")  # waits for the first turn
    done.join()
    assert history(second, "t1")[::2] == [QUESTION, "and the magma?"]
    assert stored(settings) == {"t1": 1}


def test_a_turn_that_cannot_wait_is_busy_and_leaves_the_other_whole(settings):
    started = threading.Event()
    first = slowed(agent_on(settings), 0.6, started)
    hurried = settings.model_copy(
        update={"serve": settings.serve.model_copy(update={"request_timeout_s": 0.1})}
    )
    second = agent_on(hurried)
    done = threading.Thread(target=first.ask, args=(QUESTION,), kwargs={"thread_id": "t1"})
    done.start()
    started.wait(5)
    with pytest.raises(ThreadBusy, match="still being answered by another process"):
        second.ask("and the magma?", thread_id="t1")
    done.join()
    assert history(first, "t1")[::2] == [QUESTION]  # the busy one wrote and undid nothing


def test_deleting_a_thread_while_a_turn_runs_waits_and_wins(settings):
    # `rearag threads delete` during a turn printed "deleted", then the turn brought it back.
    agent = agent_on(settings)
    agent.ask(QUESTION, thread_id="secret")
    started = threading.Event()
    slowed(agent, 0.5, started)
    done = threading.Thread(
        target=agent.ask, args=("and the code?",), kwargs={"thread_id": "secret"}
    )
    done.start()
    started.wait(5)
    delete_threads(settings, ["secret"])
    done.join()
    assert stored(settings) == {} and stored(settings, "writes") == {}


def test_a_conversation_lock_that_cannot_be_made_is_one_clear_error(home: Path):
    settings = load_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    (settings.home / "thread-locks").write_text("a file where the lock folder goes")
    lock = SqliteThreads(sqlite_checkpointer(settings), settings).lock("t1", 1.0)
    with pytest.raises(BackendError, match="cannot open the conversation's lock"):
        lock.__enter__()


@pytest.mark.slow  # the CLI in subprocesses
def test_an_unreachable_conversations_database_is_one_clear_error(home: Path):
    port = free_port()  # nothing listens there
    secret = f"postgresql://rearag:s3cret@127.0.0.1:{port}/chats"
    env = {"REARAG_AGENT__CHECKPOINTER": secret}
    for command in (["list"], ["delete", "t1"], ["prune"]):
        failed = rearag("threads", *command, env=env)
        assert_one_line_error(failed, f"conversations database postgresql://127.0.0.1:{port}/chats")
        assert "s3cret" not in failed.stderr and "is PostgreSQL running" in failed.stderr
    assert_one_line_error(
        rearag("threads", "list", env={"REARAG_AGENT__CHECKPOINTER": "mysql://x"}),
        "agent.checkpointer",
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:p@ss@localhost:1/app", "postgresql://localhost:1/app"),  # "@" in it
        ("postgresql://bob:pa/ss@h:5/db?sslmode=require", "postgresql://h:5/db"),  # "/" in it
        ("postgres://u@127.0.0.1/db", "postgres://127.0.0.1/db"),
    ],
)
def test_a_database_is_named_without_its_credentials(url, shown):
    assert postgres_where(url) == shown
    # A driver's message quoting a badly escaped password is cleaned too.
    error = postgres_unusable(url, Exception(f"bad token in {url}"))
    assert "bob" not in str(error) and "ss@" not in str(error) and shown in str(error)
