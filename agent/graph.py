"""The LangGraph state machine: rewrite → retrieve → rerank → grade → generate, looping back
to rewrite while the evidence is weak (bounded by `agent.max_retrievals`, counted in state).

    question ─▶ rewrite ─▶ retrieve ─▶ rerank ─▶ grade ──ok──▶ generate ─▶ answer
                  ▲                                 │
                  └──────── not enough evidence ────┘
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from rearag.agent import nodes
from rearag.agent.state import AgentInput, AgentOutput, AgentState, AgentTools, GraphContext
from rearag.core.config import Settings
from rearag.policies.reranker import Reranker
from rearag.tools.backends import LazyBackend
from rearag.tools.retriever import Retriever

NODES = ("rewrite", "retrieve", "rerank", "grade", "generate")


def load_tools(settings: Settings, collection: str | None = None) -> AgentTools:
    """Every tool the nodes call, each configured from its own settings section. Nodes that
    name the same local model share its weights (the loader caches per process); the LLM
    nodes' models load when a node first calls them."""
    retriever = Retriever(collection or settings.collection, settings=settings)
    return AgentTools(
        settings=settings,
        retriever=retriever,
        reranker=Reranker(settings=settings),
        rewriter=LazyBackend(settings.rewriter, settings),
        grader=LazyBackend(settings.grader, settings),
        generator=LazyBackend(settings.generator, settings),
        encode=retriever.store.embedding.encode,
    )


def build_graph(
    checkpointer: Any = None,
) -> CompiledStateGraph[AgentState, GraphContext, AgentInput, AgentOutput]:
    """The compiled graph; `checkpointer` keeps conversations (InMemorySaver, SqliteSaver).
    Its tools come with each run, as the context:

        graph.invoke(question_state(question), config, context=GraphContext(tools))

    and the result is the `AgentOutput` keys, which `Answer.from_state` reads (`RAGAgent`
    does all this).

    As a subgraph, add it as a node of a parent graph whose state has its keys (extend
    `AgentState`); a node before it returns `question_state(question)`, and the parent runs
    with the context, `parent.invoke(inputs, config, context=agent.context())`, which LangGraph
    hands down to the subgraph. The subgraph writes back its `AgentOutput` keys, not `history`
    (an added list would be added twice), and the parent's checkpointer keeps its state too.
    """
    graph = StateGraph(
        AgentState,
        context_schema=GraphContext,
        input_schema=AgentInput,
        output_schema=AgentOutput,
    )
    for name in NODES:
        graph.add_node(name, nodes.accounted(name, nodes.needs_context(getattr(nodes, name))))
    graph.add_edge(START, "rewrite")
    graph.add_edge("rewrite", "retrieve")
    graph.add_edge("retrieve", "rerank")
    graph.add_edge("rerank", "grade")
    graph.add_conditional_edges("grade", nodes.after_grade)  # targets: its Literal return type
    graph.add_edge("generate", END)
    return graph.compile(checkpointer=checkpointer)
