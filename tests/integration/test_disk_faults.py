"""A full or read-only disk under $REARAG_HOME (issue 26): one line naming the path, never a
traceback; what was stored stays searchable; an ingest stopped by a full disk is completed by
running it again once there is room; a read-only home is searched and asked. Real processes on
a real tmpfs (tests/fakes/disks.py); every LLM node on the scripted server."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest
from fakes.cli import assert_one_line_error, rearag
from fakes.disks import fill, remount, small_disk
from fakes.openai_server import Script, serve
from fakes.serving import (
    AUTH,
    KEY,
    assert_error,
    chat_body,
    echo_router,
    free_port,
    post,
    scripted_env,
    start_server,
)

MODES = ("bm25", "dense", "hybrid")
CHAT = "/v1/chat/completions"
DEMO = Path(__file__).parents[2] / "demos" / "corpus"


@pytest.fixture(scope="module")
def llm():
    script = Script()
    httpd, script.base = serve(script)
    script.default = echo_router([])
    yield script.base
    httpd.shutdown()


def many_docs(folder: Path, count: int) -> Path:
    """`count` documents of 300 words each."""
    rng = random.Random(0)
    words = ["lava", "magma", "basalt", "crust", "plate", "ocean", "river", "glacier", "forest"]
    folder.mkdir()
    for i in range(count):
        text = " ".join(rng.choice(words) for _ in range(300))
        (folder / f"doc{i:03d}.md").write_text(f"# Document {i}\n\n{text}.\n")
    return folder


def question(text: str) -> dict:
    return chat_body(text, model="docs")


def env_for(home: Path, llm: str) -> dict[str, str]:
    return {"REARAG_CONFIG": "", **scripted_env(home, llm, "docs")}


def searchable(env: dict[str, str]) -> None:
    for mode in MODES:
        found = rearag("search", "rearag demo corpus", "-k", "1", "--mode", mode, env=env)
        assert found.returncode == 0 and "Traceback" not in found.stderr, found.stderr
        assert found.stdout.startswith("1. "), (mode, found.stdout)
    listed = rearag("collections", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [{"name": "docs", "chunks": 25}]


def test_a_full_disk_during_ingest_keeps_the_index_and_the_ingest_completes_later(tmp_path, llm):
    # It used to end in Chroma's "Failed to apply logs to the metadata segment", and every
    # later search and `collections list` in a traceback until the disk was enlarged.
    with small_disk(tmp_path / "disk", "3m") as disk:
        env = env_for(disk / "home", llm)
        assert rearag("ingest", str(DEMO), "-q", env=env).returncode == 0
        more = many_docs(tmp_path / "more", 150)
        full = rearag("ingest", str(more), env=env)
        assert_one_line_error(full, f"no space left on {disk / 'home'}")
        assert "run the ingest again" in full.stderr
        searchable(env)
        remount(disk, "size=50m")
        again = rearag("ingest", str(more), "--json", env=env)
        assert again.returncode == 0, again.stderr
        assert json.loads(again.stdout)["chunks_total"] == 25 + 300


def test_a_read_only_home_is_searched_and_asked(tmp_path, llm):
    # Search, ask and ingest ended in "attempt to write a readonly database" tracebacks.
    with small_disk(tmp_path / "disk", "50m") as disk:
        env = env_for(disk / "home", llm)
        assert rearag("ingest", str(DEMO), "-q", env=env).returncode == 0
        remount(disk, "ro")
        searchable(env)
        asked = rearag("ask", "What is rearag?", "--json", env=env)
        assert asked.returncode == 0, asked.stderr
        assert not json.loads(asked.stdout)["abstained"]
        home = disk / "home"
        on_thread = rearag("ask", "What is rearag?", "--thread", "t1", env=env)
        assert_one_line_error(on_thread, f"{home} is read-only")
        changed = tmp_path / "changed"
        changed.mkdir()
        (changed / "new.md").write_text("# New\n\nA document that cannot be stored here.\n")
        assert_one_line_error(rearag("ingest", str(changed), env=env), f"{home} is read-only")
        assert rearag("threads", "list", env=env).stdout.strip() == "no threads"
        assert_one_line_error(rearag("threads", "delete", "t1", env=env), f"{home} is read-only")

        port = free_port()
        server = start_server([], {**env, "REARAG_SERVE__API_KEY": KEY}, port, tmp_path / "s.log")
        url = f"http://127.0.0.1:{port}"
        try:
            hits = post(url, "/v1/search", {"query": "rearag demo corpus", "k": 1}).json()
            assert len(hits["results"]) == 1
            assert post(url, CHAT, question("What is rearag?"), timeout=60).status_code == 200
            on_thread = post(url, CHAT, question("What is rearag?"), {**AUTH, "X-Thread-Id": "t"})
            refused = assert_error(on_thread, 503, "read_only_storage")["message"]
            assert "$REARAG_HOME is read-only" in refused and str(disk) not in refused
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_a_full_disk_while_serving_is_507_for_a_conversation_only(tmp_path, llm):
    # Chat was a 500 internal_error ("a bug") with OperationalError in the log, also without
    # a thread.
    with small_disk(tmp_path / "disk", "20m") as disk:
        env = {**env_for(disk / "home", llm), "REARAG_SERVE__API_KEY": KEY}
        assert rearag("ingest", str(DEMO), "-q", env=env).returncode == 0
        port = free_port()
        server = start_server([], env, port, tmp_path / "serve.log")
        url = f"http://127.0.0.1:{port}"
        thread = {**AUTH, "X-Thread-Id": "full"}
        try:
            first = post(url, CHAT, question("What is rearag? F1"), thread, timeout=60)
            assert first.status_code == 200, first.text
            filler = fill(disk)
            full = post(url, CHAT, question("and the agent? F2"), thread, timeout=60)
            message = assert_error(full, 507, "insufficient_storage")["message"]
            # The folder as the server's, not its absolute path (the CLI names it).
            assert message.startswith("no space left on the server's $REARAG_HOME")
            assert str(disk) not in message
            alone = post(url, CHAT, question("What is rearag?"), timeout=60)
            assert alone.status_code == 200, alone.text  # no thread: nothing to save
            assert post(url, "/v1/search", {"query": "rearag", "k": 1}).status_code == 200
            os.unlink(filler)
            after = post(url, CHAT, question("and the graph? F3"), thread, timeout=60)
            content = after.json()["choices"][0]["message"]["content"]
            assert "earlier: What is rearag F1)" in content  # F2 was not kept, F1 was
        finally:
            server.terminate()
            server.wait(timeout=30)
        log = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in log and "500" not in log.replace("5000", "")
