"""`rearag mcp`: search, rerank and ask as MCP tools over stdio (official `mcp` SDK), for MCP
clients such as desktop assistants, IDEs and other agents.

Each tool is a plain function; the SDK runs it in a worker thread and returns its pydantic
result as structured content. A RearagError reaches the client as a tool error.
"""

from __future__ import annotations

import contextlib
import sys

from mcp.server.mcpserver import MCPServer

from rearag import __version__
from rearag.agent.config import Settings
from rearag.agent.rag import RAGAgent
from rearag.agent.state import Answer
from rearag.policies.reranker import RankedResults
from rearag.tools.retriever import Mode, SearchHit


def build_mcp(agent: RAGAgent) -> MCPServer:
    server = MCPServer(
        "rearag",
        version=__version__,
        instructions=(
            f"Answers questions from the document collection {agent.tools.retriever.store.name!r} "
            "with citations (ask), searches it (search), and reranks passages (rerank)."
        ),
    )

    @server.tool()
    def search(query: str, k: int = 5, mode: Mode | None = None) -> list[SearchHit]:
        """Search the collection (dense, bm25 or hybrid); best passages first."""
        return agent.tools.retriever.search(query, k=min(k, 100), mode=mode)

    @server.tool()
    def rerank(query: str, documents: list[str], top_k: int | None = None) -> RankedResults:
        """Order passages by how well they answer the query (the reasoning reranker)."""
        ranked = agent.tools.reranker.rank(query, documents)
        if top_k:
            ranked.results = ranked.results[:top_k]
        return ranked

    @server.tool()
    def ask(question: str, thread_id: str | None = None) -> Answer:
        """Answer a question from the collection with numbered citations and their sources.
        Questions with the same thread_id continue one conversation."""
        return agent.ask(question, thread_id=thread_id)

    return server


def run_mcp(settings: Settings) -> None:
    # stdout carries the protocol: anything a library prints while loading goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        agent = RAGAgent(settings)
    build_mcp(agent).run("stdio")
