"""`rearag mcp`: collections, search, rerank and ask as MCP tools over stdio (official `mcp`
SDK), for MCP clients such as desktop assistants, IDEs and other agents.

The server answers `initialize` and `tools/list` at once: nothing is loaded at start-up, so a
missing collection or a bad model setting cannot kill it (a client would only see "Connection
closed"). Each tool loads what it needs on its first call, once per process, from the registry
the HTTP server uses too (`registry.py`), with the same limits, and sources are shown as the
HTTP server shows them (`paths.py`, `serve.show_paths`). The call that loaded reports
the seconds in its result's `_meta` ("rearag/load_s"), and stderr logs them.

Each tool is a plain function; the SDK runs it in a worker thread and returns its result as
structured content. A RearagError (an empty question, a missing collection, …) reaches the
client as a tool error with its message; other failures as the SDK's generic error, logged on
stderr. stdout carries only the protocol: while serving, the SDK points file descriptor 1 at
stderr and writes the protocol to a private copy of it.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent
from pydantic import BaseModel, Field, ValidationError

from rearag import __version__
from rearag.agent.rag import RAGAgent
from rearag.agent.serving.paths import shown_answer, shown_passages
from rearag.agent.serving.registry import AgentRegistry, Loaded
from rearag.core.config import SearchMode, Settings
from rearag.core.errors import RearagError
from rearag.core.filters import WHERE_HELP, Where
from rearag.core.text import describe, validation_problems
from rearag.core.types import Answer, Passage
from rearag.policies.reranker import RankedResults
from rearag.tools.store import collection_counts

log = logging.getLogger("rearag.mcp")

F = TypeVar("F", bound=Callable[..., object])

LOAD_META = "rearag/load_s"  # `_meta` key of the result of the call that loaded models


class CollectionInfo(BaseModel):
    name: str = Field(description="pass it as the `collection` argument of search or ask")
    chunks: int = Field(description="number of indexed chunks (passages)")
    default: bool = Field(description="searched when a tool call names no collection")


def _tool(fn: F) -> F:
    """`fn` with its docstring on one line (the SDK sends it as the description, indentation
    and all) and a RearagError turned into a tool error with its message."""

    @functools.wraps(fn)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return fn(*args, **kwargs)
        except RearagError as exc:
            raise ToolError(str(exc)) from None

    wrapper.__doc__ = " ".join((fn.__doc__ or "").split())
    return wrapper  # type: ignore[return-value]


def _result(value: BaseModel | list[BaseModel], load_s: float | None) -> CallToolResult:
    """`value` as the SDK returns a tool's result (one JSON text block per item, structured
    content wrapped in {"result": …} for a list), with the load time in `_meta` when this call
    loaded the models."""
    items = value if isinstance(value, list) else [value]
    data = [item.model_dump(mode="json", by_alias=True) for item in items]
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(d, indent=2)) for d in data],
        structured_content={"result": data} if isinstance(value, list) else data[0],
        meta={LOAD_META: round(load_s, 2)} if load_s is not None else None,
    )


@contextlib.contextmanager
def _loading(what: str) -> Iterator[None]:
    """Around a call that may load models: what a library prints goes to stderr (the SDK
    points fd 1 at stderr while serving; this also keeps it out of sys.stdout's buffer, which
    Python flushes at exit, after the SDK restored fd 1), and a failure to load is a tool
    error that says so."""
    with contextlib.redirect_stdout(sys.stderr):
        try:
            yield
        except RearagError:
            raise
        except Exception as exc:
            log.exception("loading models for %s failed", what)
            raise ToolError(
                f"loading models for {what} failed: {describe(exc)} "
                "(check the model settings; the server's stderr has the traceback)"
            ) from None


def _agent(agents: AgentRegistry, collection: str | None) -> Loaded[RAGAgent]:
    with _loading(f"collection {collection or agents.settings.collection}"):
        return agents.agent(collection)


CollectionArg = Annotated[
    str | None,
    Field(
        description="name of the document collection to use (the collections tool lists them); "
        "default: the server's collection"
    ),
]
WhereArg = Annotated[dict[str, Any] | None, Field(description=WHERE_HELP)]


class _RearagMCP(MCPServer):
    """The SDK's server, whose argument errors read like rearag's others: where and why on
    one line, without pydantic's echo of the input and its documentation link."""

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Any = None
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not isinstance(exc.__cause__, ValidationError):
                raise
            problems = validation_problems(exc.__cause__.errors())
            raise ToolError(f"invalid arguments for {name}: {problems}") from None


def build_mcp(load_settings: Callable[[], Settings]) -> MCPServer:
    """The server; `load_settings` is called on the first tool call, not here."""
    agents = AgentRegistry(load_settings)  # any existing collection, loaded on first use
    server = _RearagMCP(
        "rearag",
        version=__version__,
        instructions=(
            "Answers questions from document collections with citations (ask), searches them "
            "(search), lists them (collections) and reranks passages (rerank). Without a "
            "collection argument, tools use the server's default collection (collections marks "
            "it)."
        ),
    )

    @server.tool()
    @_tool
    def collections() -> list[CollectionInfo]:
        """List the document collections this server can search or answer from, with their
        number of chunks. Pass a name as the `collection` argument of search or ask."""
        settings = agents.settings
        return [
            CollectionInfo(name=name, chunks=n, default=name == settings.collection)
            for name, n in collection_counts(settings).items()
        ]

    @server.tool()
    @_tool
    def search(
        query: Annotated[str, Field(description="what to look for, in words or as a question")],
        k: Annotated[int, Field(ge=1, description="how many passages to return (at most 100)")] = 5,
        mode: Annotated[
            SearchMode | None,
            Field(
                description="dense (meaning, by embeddings), bm25 (exact words) or hybrid "
                "(both fused); default: the server's configured mode"
            ),
        ] = None,
        collection: CollectionArg = None,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, list[Passage]]:
        """Find the passages of a document collection that best match a query, best first,
        with their text, source file and score. No answer is written: use it to look things
        up or gather sources; use ask for a cited answer."""
        condition = Where.parse(where)
        agent, took = _agent(agents, collection)
        hits = agent.tools.retriever.search(query, k=min(k, 100), mode=mode, where=condition)
        return _result(shown_passages(hits, agents.settings.serve), took)

    @server.tool()
    @_tool
    def rerank(
        query: Annotated[str, Field(description="the question or need the passages should answer")],
        documents: Annotated[list[str], Field(description="the passages to order, as plain texts")],
        top_k: Annotated[
            int | None,
            Field(ge=1, description="keep only this many of the best; default: all"),
        ] = None,
    ) -> Annotated[CallToolResult, RankedResults]:
        """Order passages you already have (from anywhere, not from a collection) by how well
        they answer a query, using a reasoning reranker. Results come best first; each doc_id
        is the passage's position in `documents` ("0" is the first), and `windows` holds the
        reranker's reasoning."""
        agents.check_documents(query, documents)
        with _loading("the reranker"):
            reranker, took = agents.reranker()
        ranked = reranker.rank(query, documents)
        if top_k:
            ranked.results = ranked.results[:top_k]
        return _result(ranked, took)

    @server.tool()
    @_tool
    def ask(
        question: Annotated[str, Field(description="the question, in natural language")],
        thread_id: Annotated[
            str | None,
            Field(
                description="any name for a conversation: questions with the same thread_id "
                "are follow-ups of each other (e.g. 'it' refers to an earlier subject); "
                "omit for a standalone question"
            ),
        ] = None,
        collection: CollectionArg = None,
        where: WhereArg = None,
    ) -> Annotated[CallToolResult, Answer]:
        """Answer a question from a document collection: the agent searches, reranks the
        passages, and writes an answer with numbered citations [1] and their sources, or
        abstains when the collection holds no evidence. Slower than search (several model
        calls)."""
        condition = Where.parse(where)
        agent, took = _agent(agents, collection)
        answer = agent.ask(question, thread_id=thread_id, where=condition)
        return _result(shown_answer(answer, agents.settings.serve), took)

    return server


def run_mcp(load_settings: Callable[[], Settings]) -> None:
    # One plain line per record on stderr (the SDK's default, rich, wraps at 80 columns), and
    # at INFO only the server's own: libraries log every model load and HTTP call at INFO.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("rearag", "mcp"):
        logging.getLogger(name).setLevel(logging.INFO)
    build_mcp(load_settings).run("stdio")
