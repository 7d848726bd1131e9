"""`rearag mcp` as an MCP client sees it: the official `mcp` client spawns the server over stdio
and calls each tool. Every LLM node is on the scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import os

import anyio
import pytest
from conftest import RAGBIN
from mcp import ClientSession, StdioServerParameters, stdio_client
from openai_server import Script, serve
from serving import echo_router, ingest_docs, scripted_env

pytestmark = pytest.mark.slow


def test_mcp_tools_over_stdio(tmp_path):
    script = Script()
    httpd, base = serve(script)
    script.default = echo_router([])
    env = scripted_env(tmp_path / "home", base, "default")
    ingest_docs(tmp_path, tmp_path / "home", "mcp-docs")
    params = StdioServerParameters(
        command=str(RAGBIN),
        args=["mcp", "--collection", "mcp-docs"],
        env={**os.environ, "REARAG_CONFIG": "", **env},
        cwd=tmp_path,
    )

    async def session() -> dict:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            tools = {t.name for t in (await s.list_tools()).tools}
            found = await s.call_tool("search", {"query": "sourdough starter", "k": 2})
            ranked = await s.call_tool(
                "rerank", {"query": "lava", "documents": ["a", "b", "c"], "top_k": 2}
            )
            answer = await s.call_tool(
                "ask", {"question": "Where does lava come from? M1", "thread_id": "m"}
            )
            empty = await s.call_tool("ask", {"question": "  "})
            return {"tools": tools, "search": found, "rerank": ranked, "ask": answer, "bad": empty}

    try:
        out = anyio.run(session)
    finally:
        httpd.shutdown()
    assert out["tools"] == {"search", "rerank", "ask"}
    hits = out["search"].structured_content["result"]
    assert len(hits) == 2 and hits[0]["metadata"]["source"].endswith("bread.txt")
    ranked = out["rerank"].structured_content
    assert [r["doc_id"] for r in ranked["results"]] == ["0", "1"]
    answer = out["ask"].structured_content
    assert "a rupture in the crust" in answer["answer"] and "M1" in answer["answer"]
    assert answer["citations"][0]["source"].endswith("volcano.md")
    assert answer["thread_id"] == "m"
    assert json.loads(out["ask"].content[0].text)["answer"] == answer["answer"]
    assert out["bad"].is_error and "question is empty" in out["bad"].content[0].text
