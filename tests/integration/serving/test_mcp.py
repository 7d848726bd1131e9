"""`rearag mcp` as an MCP client sees it: the official `mcp` client spawns the server over stdio
and calls each tool. Every LLM node is on the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from fakes.cli import RAGBIN
from fakes.openai_server import Script, serve
from fakes.serving import echo_router, ingest_docs, scripted_env
from mcp import ClientSession, StdioServerParameters, stdio_client

from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

TOOLS = {"collections", "search", "rerank", "ask"}

# `rearag mcp -c nope` whose agent prints while it loads, through Python and straight on fd 1.
NOISY_MCP = """
import os, sys
from rearag.agent import rag
init = rag.RAGAgent.__init__
def noisy(self, *args, **kwargs):
    print("noise from print")
    sys.stdout.flush()
    os.write(1, b"noise on fd 1\\n")
    init(self, *args, **kwargs)
rag.RAGAgent.__init__ = noisy
from rearag.cli import main
sys.argv = ["rearag", "mcp", "-c", "nope"]
main()
"""


def ingest_glaciers(tmp: Path, home: Path) -> None:
    folder = tmp / "glaciers"
    folder.mkdir()
    (folder / "glacier.md").write_text(
        "A glacier is a persistent body of dense ice that moves slowly under its own weight.\n"
    )
    ingest([folder], Store(load_settings(home=home), "glaciers", create=True), progress=False)


def run_session(
    params: StdioServerParameters, stderr: Path, calls: list[tuple[str, dict[str, Any]]]
) -> tuple[list[Any], list[Any], list[Exception]]:
    """(the tools listed, the result of each call in order, the messages the client could not
    read), with the server's stderr in `stderr`."""

    async def session() -> tuple[list[Any], list[Any], list[Exception]]:
        unreadable: list[Exception] = []

        async def on_message(message: Any) -> None:
            if isinstance(message, Exception):
                unreadable.append(message)

        with stderr.open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, message_handler=on_message) as s,
            ):
                await s.initialize()
                tools = (await s.list_tools()).tools
                results = [await s.call_tool(name, args) for name, args in calls]
        return tools, results, unreadable

    return anyio.run(session)


def test_mcp_tools_over_stdio(tmp_path):
    script = Script()
    httpd, base = serve(script)
    script.default = echo_router([])
    home = tmp_path / "home"
    env = scripted_env(home, base, "default")
    ingest_docs(tmp_path, home, "mcp-docs")
    ingest_glaciers(tmp_path, home)
    params = StdioServerParameters(
        command=str(RAGBIN),
        args=["mcp", "--collection", "mcp-docs"],
        env={**os.environ, "REARAG_CONFIG": "", **env},
        cwd=tmp_path,
    )
    calls = [
        ("collections", {}),
        ("search", {"query": "sourdough starter", "k": 2}),
        ("rerank", {"query": "lava", "documents": ["a", "b", "c"], "top_k": 2}),
        ("ask", {"question": "Where does lava come from? M1", "thread_id": "m"}),
        ("ask", {"question": "How does a glacier move? M2", "collection": "glaciers"}),
        ("search", {"query": "lava", "collection": "nope"}),
        ("search", {"query": "ice", "k": 1, "collection": "glaciers"}),
        ("ask", {"question": "  "}),
        ("ask", {"question": "Where does lava come from?", "thread_id": "t" * 201}),
        # Issue 26: over the size HTTP accepts, and arguments of the wrong type.
        ("rerank", {"query": "lava", "documents": ["x" * 1_000_001]}),
        ("rerank", {"query": "lava", "documents": "not a list", "top_k": "two"}),
        # Issue 27: a filter on the chunks' metadata, and a malformed one.
        ("search", {"query": "sourdough starter", "k": 3, "where": {"title": "Volcanoes"}}),
        ("search", {"query": "lava", "where": {"title": {"$near": 1}}}),
    ]
    try:
        tools, results, unreadable = run_session(params, tmp_path / "stderr.log", calls)
    finally:
        httpd.shutdown()
    listing, found, ranked, answer, glacier, unknown, ice, empty, long_thread = results[:9]
    huge, wrong, filtered, bad_filter = results[9:]
    assert {t.name for t in tools} == TOOLS and unreadable == []
    for tool in tools:
        assert tool.description and "\n" not in tool.description
        for name, schema in tool.input_schema["properties"].items():
            assert schema.get("description"), f"{tool.name}({name}) has no description"

    assert listing.structured_content["result"] == [
        {"name": "glaciers", "chunks": 1, "default": False},
        {"name": "mcp-docs", "chunks": 3, "default": True},
    ]
    hits = found.structured_content["result"]
    # Sources as the HTTP server shows them: as ingested (`docs/…`), doc_id too, never the
    # server's absolute paths.
    assert len(hits) == 2 and hits[0]["metadata"]["source"] == "docs/bread.txt"
    assert hits[0]["metadata"]["doc_id"] == "docs/bread.txt"
    for result in (found, answer, glacier, ice):
        assert str(tmp_path) not in json.dumps(result.structured_content)
    assert [r["doc_id"] for r in ranked.structured_content["results"]] == ["0", "1"]

    # The first call on a collection (and of rerank) loads its models and says how long it took.
    # Later collections load fast (the models are shared), maybe in under 0.005 s.
    assert found.meta["rearag/load_s"] > 0 and ranked.meta["rearag/load_s"] >= 0
    assert glacier.meta["rearag/load_s"] >= 0
    assert answer.meta is None and ice.meta is None
    log = (tmp_path / "stderr.log").read_text()
    assert "loaded models for collection mcp-docs in" in log
    assert "loaded models for collection glaciers in" in log

    assert "a rupture in the crust" in answer.structured_content["answer"]
    assert "M1" in answer.structured_content["answer"]
    assert answer.structured_content["citations"][0]["source"] == "docs/volcano.md"
    assert answer.structured_content["thread_id"] == "m"
    assert json.loads(answer.content[0].text) == answer.structured_content

    assert "dense ice" in glacier.structured_content["answer"]
    assert glacier.structured_content["citations"][0]["source"] == "glaciers/glacier.md"

    assert unknown.is_error
    assert unknown.content[0].text.endswith(
        "collection 'nope' does not exist; available: glaciers, mcp-docs"
    )
    # …and the server goes on answering.
    assert ice.structured_content["result"][0]["metadata"]["source"] == "glaciers/glacier.md"
    assert empty.is_error and "question is empty" in empty.content[0].text
    # The same cap as HTTP's, by the same rule.
    assert long_thread.is_error and "the limit is 200" in long_thread.content[0].text
    assert huge.is_error and "serve.max_body_bytes" in huge.content[0].text
    assert len(huge.content[0].text) < 300  # the document is not echoed back
    [line] = wrong.content[0].text.splitlines()
    assert line.startswith("invalid arguments for rerank: documents: ") and "top_k: " in line
    assert "pydantic.dev" not in line and "not a list" not in line
    assert [h["metadata"]["title"] for h in filtered.structured_content["result"]] == ["Volcanoes"]
    assert bad_filter.is_error
    assert "where.title: unknown operator '$near'" in bad_filter.content[0].text


def test_mcp_starts_whatever_fails_to_load(tmp_path):
    """`rearag mcp -c nope` with a generator that cannot load: the server starts and lists its
    tools (nothing loads before a call), and each call says what is wrong."""
    home = tmp_path / "home"
    ingest_docs(tmp_path, home, "mcp-docs")
    # No LLM server: nothing may call one. The generator fails to load, after the others.
    env = {
        **scripted_env(home, "http://127.0.0.1:9/v1", "mcp-docs"),
        "REARAG_GENERATOR__MODEL": "policy:nosuch",
    }
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", NOISY_MCP],
        env={**os.environ, "REARAG_CONFIG": "", **env},
        cwd=tmp_path,
    )
    calls = [
        ("ask", {"question": "Where does lava come from?"}),
        ("ask", {"question": "Where does lava come from?", "collection": "mcp-docs"}),
        ("collections", {}),
    ]
    tools, (missing, broken, listing), unreadable = run_session(
        params, tmp_path / "stderr.log", calls
    )
    assert {t.name for t in tools} == TOOLS
    assert missing.is_error
    assert missing.content[0].text.endswith("collection 'nope' does not exist; available: mcp-docs")
    assert broken.is_error and "no trained policy 'nosuch'" in broken.content[0].text
    assert listing.structured_content["result"] == [
        {"name": "mcp-docs", "chunks": 3, "default": False}
    ]
    # What the agent printed while loading went to stderr, never into the protocol.
    assert unreadable == []
    log = (tmp_path / "stderr.log").read_text()
    assert "noise from print" in log and "noise on fd 1" in log
