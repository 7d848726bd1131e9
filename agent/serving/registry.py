"""The agents a server answers with, one per collection, shared by HTTP and MCP, and the limits
both apply.

Agents share one checkpointer and, through the loader's cache, the local models. Loads take
turns under one lock (a call meanwhile waits): they share weights, and two loads of one model
at once would load it twice. `rearag serve` loads every served collection at start
(`warm_up`), so a missing one stops it before it listens, with the store's own error; `rearag
mcp` loads each on its first call, so a bad setting is a tool error, not a dead server, and a
missing collection's error lists the ones that exist.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from rearag.agent.rag import RAGAgent
from rearag.agent.thread_store import open_checkpointer
from rearag.core.config import Settings
from rearag.core.errors import ModelNotServed, NotFoundError, TooManyDocuments
from rearag.policies.reranker import Reranker
from rearag.tools.store import list_collections, make_client

log = logging.getLogger("rearag.agents")
T = TypeVar("T")


class Loaded(NamedTuple, Generic[T]):
    value: T
    load_s: float | None  # seconds this call spent loading it; None when it was loaded before


class AgentRegistry:
    """One `RAGAgent` per collection and one `Reranker`, each loaded on first use and kept.
    With `served`, only those collections (an HTTP server's models); without, any existing
    one (MCP)."""

    def __init__(self, load_settings: Callable[[], Settings], served: list[str] | None = None):
        self._load_settings = load_settings
        self._settings: Settings | None = None
        self.served = list(dict.fromkeys(served)) if served else None
        self._lock = threading.Lock()
        self._agents: dict[str, RAGAgent] = {}
        self._reranker: Reranker | None = None
        self._checkpointer: Any = None

    @property
    def settings(self) -> Settings:
        """Read on first use: for MCP a bad configuration is every tool's error (a
        ConfigError), and the next call reads it again after the user fixes it."""
        if self._settings is None:
            self._settings = self._load_settings()
        return self._settings

    @property
    def default(self) -> str:
        """The collection used when a request names none."""
        return self.served[0] if self.served else self.settings.collection

    def warm_up(self) -> None:
        """Load every served collection now."""
        for name in self.served or [self.default]:
            self.agent(name)

    def agent(self, collection: str | None) -> Loaded[RAGAgent]:
        """The agent of `collection`; None means the default. A server names what it serves
        (an empty name is not among it); MCP first names the collections that exist."""
        if self.served is not None and collection is not None and collection not in self.served:
            raise not_served(collection, self.served)
        name = collection or self.default
        with self._lock:
            if name in self._agents:
                return Loaded(self._agents[name], None)
            if self.served is None:
                existing = list_collections(make_client(self.settings))
                if name not in existing:
                    available = (
                        ", ".join(existing) or "none (create one: `rearag ingest PATH -c NAME`)"
                    )
                    raise NotFoundError(
                        f"collection {name!r} does not exist; available: {available}"
                    )
            loaded = _timed(f"collection {name}", lambda: self._new_agent(name))
            self._agents[name] = loaded.value
            return loaded

    def reranker(self) -> Loaded[Reranker]:
        """The `[reranker]` policy: a loaded agent's (they are alike; nothing to load), else
        one of its own."""
        with self._lock:
            if self._reranker is None and self._agents:
                self._reranker = next(iter(self._agents.values())).tools.reranker
                return Loaded(self._reranker, 0.0)
            if self._reranker is not None:
                return Loaded(self._reranker, None)
            loaded = _timed("the reranker", lambda: Reranker(settings=self.settings))
            self._reranker = loaded.value
            return loaded

    def check_documents(self, query: str, documents: list[str]) -> None:
        """The most documents one rerank request may hold, and the most bytes of text, for
        every way of serving: HTTP refuses larger bodies before they are read
        (`serve.max_body_bytes`), MCP over stdio has no body limit of its own."""
        cfg = self.settings.serve
        if len(documents) > cfg.max_documents:
            raise TooManyDocuments(
                f"{len(documents)} documents; the limit is {cfg.max_documents} "
                "(serve.max_documents)"
            )
        size = sum(len(text.encode("utf-8", "surrogatepass")) for text in [query, *documents])
        if size > cfg.max_body_bytes:
            raise TooManyDocuments(
                f"the query and documents hold {size} bytes; the limit is {cfg.max_body_bytes} "
                "(serve.max_body_bytes): send fewer or shorter documents"
            )

    def _new_agent(self, collection: str) -> RAGAgent:
        if self._checkpointer is None:
            self._checkpointer = open_checkpointer(self.settings)
        agent = RAGAgent(self.settings, collection=collection, checkpointer=self._checkpointer)
        if self.served is None:
            # Loaded on a call (MCP): the embedder too, so the call that reports the load time
            # holds all of it. A server loads it on its first request, as it always has.
            agent.tools.encode(["warm-up"])
        return agent


def not_served(requested: str, visible: list[str]) -> ModelNotServed:
    """The one answer for a collection a request may not use, whether it is not served or its
    key may not see it: the same words, listing only what the caller may use."""
    return ModelNotServed(
        f"model {requested[:100]!r} is not served here: use one of " + ", ".join(visible)
    )


def _timed(what: str, build: Callable[[], T]) -> Loaded[T]:
    start = time.perf_counter()
    value = build()
    took = time.perf_counter() - start
    log.info("loaded models for %s in %.1f s", what, took)
    return Loaded(value, took)
