"""`rearag mcp`: search, rerank and ask as MCP tools over stdio (official `mcp` SDK), for MCP
clients such as desktop assistants, IDEs and other agents.

Each tool is a plain function; the SDK runs it in a worker thread and returns its pydantic
result as structured content. A RearagError (an empty question, …) reaches the client as a
tool error with its message; other failures as the SDK's generic error, logged on stderr.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from rearag import __version__
from rearag.agent.rag import RAGAgent
from rearag.core.config import SearchMode, Settings
from rearag.core.errors import RearagError
from rearag.core.types import Answer, Passage
from rearag.policies.reranker import RankedResults

F = TypeVar("F", bound=Callable[..., object])


def _user_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except RearagError as exc:
            raise ToolError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


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
    @_user_errors
    def search(query: str, k: int = 5, mode: SearchMode | None = None) -> list[Passage]:
        """Search the collection (dense, bm25 or hybrid); best passages first."""
        return agent.tools.retriever.search(query, k=min(k, 100), mode=mode)

    @server.tool()
    @_user_errors
    def rerank(query: str, documents: list[str], top_k: int | None = None) -> RankedResults:
        """Order passages by how well they answer the query (the reasoning reranker)."""
        ranked = agent.tools.reranker.rank(query, documents)
        if top_k:
            ranked.results = ranked.results[:top_k]
        return ranked

    @server.tool()
    @_user_errors
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
