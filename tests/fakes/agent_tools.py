"""Fake tools for the agent's graph: a retriever over a fixed list of passages, the first-stage
reranker (no model) and LLM backends with scripted replies; the passages and question the node
tests use; and the settings for capable models the fakes stand in for. The evidence and topic
checks use the bundled MiniLM embedder."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

from langgraph.runtime import Runtime

from rearag.agent import nodes
from rearag.agent.state import AgentState, AgentTools, GraphContext, question_state
from rearag.core.config import Settings, load_settings
from rearag.core.filters import Where
from rearag.core.types import Passage
from rearag.policies.reranker import Reranker
from rearag.tools.embedder import RearagEmbeddingFunction
from rearag.tools.llm import Completion, Message

VOLCANO = Passage(
    id="volcano.md#0",
    text="A volcano is a rupture in the crust of a planet where lava, volcanic ash and gases "
    "escape from a magma chamber below the surface.",
    metadata={"source": "docs/volcano.md", "title": "Volcanoes", "doc_id": "volcano.md"},
)
BREAD = Passage(
    id="bread.txt#0",
    text="Sourdough bread is leavened by a culture of wild yeast and lactic acid bacteria.",
    metadata={"source": "docs/bread.txt", "title": "", "doc_id": "bread.txt"},
)
CHESS = Passage(
    id="chess.html#0",
    text="The Sicilian Defence answers 1.e4 with 1...c5, fighting for the centre.",
    metadata={"source": "docs/chess.html", "title": "Chess openings", "doc_id": "chess.html"},
)
QUESTION = "Where does lava come from?"


class FakeRetriever:
    """`search` answers from a script (query -> passages), else returns every passage."""

    def __init__(self, passages: list[Passage], script: dict[str, list[Passage]] | None = None):
        self.passages, self.script = passages, script or {}
        self.store = SimpleNamespace(name="fake-docs")
        self.queries: list[str] = []

    def search(self, query: str, k: int = 10, where: Where | None = None) -> list[Passage]:
        self.queries.append(query)
        found = self.script.get(query, self.passages)
        return [p for p in found if where is None or where.matches(p.metadata)][:k]


class FakeLLM:
    """Replies in order, the last one repeated; an Exception reply is raised. Records each
    call's messages and max_new_tokens."""

    model = "fake"

    def __init__(self, *replies: str | Exception):
        self.replies = list(replies) or [""]
        self.calls: list[tuple[list[Message], int]] = []

    def _next(self, messages: list[Message], max_new_tokens: int) -> str:
        self.calls.append((messages, max_new_tokens))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def generate(
        self,
        messages_batch: list[list[Message]],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> list[Completion]:
        return [counted(m, self._next(m, max_new_tokens)) for m in messages_batch]


def counted(messages: list[Message], text: str) -> Completion:
    """A completion whose tokens are words: the prompt's and the reply's."""
    prompt = sum(len(m["content"].split()) for m in messages)
    return Completion(text=text, prompt_tokens=prompt, completion_tokens=len(text.split()))


class StreamingLLM(FakeLLM):
    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | Completion]:
        text = self._next(messages, max_new_tokens)
        yield from re.findall(r"\S+\s*", text)
        yield counted(messages, text)


CITED = "Lava comes from a magma chamber [1]."


def make_tools(settings: Settings, **replace: Any) -> AgentTools:
    tools = AgentTools(
        settings=settings,
        retriever=FakeRetriever([VOLCANO, BREAD, CHESS]),
        reranker=Reranker("first-stage", settings=settings),
        rewriter=FakeLLM("volcano lava magma"),
        grader=FakeLLM("yes"),
        generator=FakeLLM(CITED),
        encode=RearagEmbeddingFunction().encode,
    )
    for name, value in replace.items():
        setattr(tools, name, value)
    return tools


def run(node: nodes.Node, state: AgentState, tools: AgentTools, **runtime: Any) -> dict[str, Any]:
    return node(state, Runtime(context=GraphContext(tools), **runtime))


def graded(passages: list[Passage], **state: Any) -> AgentState:
    """The state generate sees after a grade of ok on `passages`."""
    return {
        **question_state(QUESTION),
        **{"queries": [QUESTION], "attempts": 1, "passages": passages, "grade": "ok"},
        **state,
    }


def capable_settings() -> Settings:
    """Settings for capable models: the fake LLMs stand in for models rearag trusts."""
    return load_settings(
        **{"reranker.policy": "first-stage", "grader.use_model": True},
        **{"generator.mode": "generate", "rewriter.standalone": True},
    )
