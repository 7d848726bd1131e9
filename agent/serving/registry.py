"""The agents a server answers with, one per collection, shared by HTTP and MCP, and the limits
both apply.

Agents share one checkpointer and, through the loader's cache, the local models. Loads take
turns under one lock (a call meanwhile waits): they share weights, and two loads of one model
at once would load it twice. `rearag serve` loads every served collection at start
(`warm_up`), so a missing one stops it before it listens; `rearag mcp` loads each on its first
call, so a bad setting is a tool error, not a dead server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar

from rearag.agent.rag import RAGAgent, sqlite_checkpointer
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
        name = collection or self.default
        if self.served is not None and name not in self.served:
            raise ModelNotServed(
                f"model {name[:100]!r} is not served here: use one of {', '.join(self.served)}"
            )
        with self._lock:
            if name in self._agents:
                return Loaded(self._agents[name], None)
            existing = list_collections(make_client(self.settings))
            if name not in existing:
                available = ", ".join(existing) or "none (create one: `rearag ingest PATH -c NAME`)"
                raise NotFoundError(f"collection {name!r} does not exist; available: {available}")
            loaded = _timed(f"collection {name}", lambda: self._new_agent(name))
            self._agents[name] = loaded.value
            return loaded

    def reranker(self) -> Loaded[Reranker]:
        """The `[reranker]` policy: a loaded agent's (they are alike), else one of its own."""
        with self._lock:
            if self._reranker is not None:
                return Loaded(self._reranker, None)
            agents = list(self._agents.values())
            loaded = _timed(
                "the reranker",
                lambda: agents[0].tools.reranker if agents else Reranker(settings=self.settings),
            )
            self._reranker = loaded.value
            return loaded

    def check_documents(self, count: int) -> None:
        """The most documents one rerank request may hold, for every way of serving."""
        limit = self.settings.serve.max_documents
        if count > limit:
            raise TooManyDocuments(f"{count} documents; the limit is {limit} (serve.max_documents)")

    def _new_agent(self, collection: str) -> RAGAgent:
        if self._checkpointer is None:
            self._checkpointer = sqlite_checkpointer(self.settings)
        agent = RAGAgent(self.settings, collection=collection, checkpointer=self._checkpointer)
        agent.tools.encode(["warm-up"])  # the embedder loads on first use: now, not mid-call
        return agent


def _timed(what: str, build: Callable[[], T]) -> Loaded[T]:
    start = time.perf_counter()
    value = build()
    took = time.perf_counter() - start
    log.info("loaded models for %s in %.1f s", what, took)
    return Loaded(value, took)
