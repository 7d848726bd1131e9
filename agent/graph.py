"""The LangGraph state machine: rewrite → retrieve → rerank → grade → generate, looping back
to rewrite while the evidence is weak (bounded by `agent.max_retrievals`, counted in state).

    question ─▶ rewrite ─▶ retrieve ─▶ rerank ─▶ grade ──ok──▶ generate ─▶ answer
                  ▲                                 │
                  └──────── not enough evidence ────┘
"""

from __future__ import annotations

import functools
from typing import Any

from langgraph.graph import END, START, StateGraph

from rearag.agent import nodes
from rearag.agent.state import AgentState
from rearag.core.config import Settings
from rearag.policies.reranker import Reranker
from rearag.tools.backends import load_backend
from rearag.tools.retriever import Retriever

NODES = ("rewrite", "retrieve", "rerank", "grade", "generate")


def load_tools(settings: Settings, collection: str | None = None) -> nodes.Tools:
    """Every tool the nodes call, each configured from its own settings section. Nodes that
    name the same local model share its weights (the loader caches per process)."""
    return nodes.Tools(
        settings=settings,
        retriever=Retriever(collection or settings.collection, settings=settings),
        reranker=Reranker(settings=settings),
        rewriter=load_backend(settings.rewriter, settings),
        grader=load_backend(settings.grader, settings),
        generator=load_backend(settings.generator, settings),
    )


def build_graph(tools: nodes.Tools, checkpointer: Any = None) -> Any:
    """The compiled graph; `checkpointer` keeps conversations (InMemorySaver, SqliteSaver)."""
    graph = StateGraph(AgentState)
    for name in NODES:
        fn = nodes.timed(name, getattr(nodes, name))
        graph.add_node(name, functools.partial(fn, tools=tools))
    graph.add_edge(START, "rewrite")
    graph.add_edge("rewrite", "retrieve")
    graph.add_edge("retrieve", "rerank")
    graph.add_edge("rerank", "grade")
    graph.add_conditional_edges(
        "grade",
        functools.partial(nodes.after_grade, tools=tools),
        {"generate": "generate", "rewrite": "rewrite"},
    )
    graph.add_edge("generate", END)
    return graph.compile(checkpointer=checkpointer)
