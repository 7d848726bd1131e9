"""The whole graph on fake tools (tests/fakes/agent_tools.py): an answer and a follow-up on a
thread, the bounded loop, the context it needs, and the graph as a subgraph of another."""

from __future__ import annotations

import pytest
from fakes.agent_tools import (
    BREAD,
    CHESS,
    CITED,
    QUESTION,
    VOLCANO,
    FakeLLM,
    capable_settings,
    make_tools,
)
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from rearag.agent import prompts
from rearag.agent.graph import build_graph
from rearag.agent.rag import RAGAgent
from rearag.agent.state import AgentInput, AgentState, question_state
from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError
from rearag.core.sanitize import neutralise
from rearag.core.types import Answer


@pytest.fixture
def settings(home) -> Settings:
    """Settings for capable models: the fake LLMs stand in for models rearag trusts."""
    return capable_settings()


def test_the_graph_answers_with_fake_tools(settings):
    tools = make_tools(settings)
    agent = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver())
    answer = agent.ask(QUESTION, thread_id="t1")
    assert answer.answer == CITED and not answer.abstained and answer.thread_id == "t1"
    assert answer.queries == [QUESTION, "volcano lava magma"] and answer.attempts == 1
    assert [c.number for c in answer.citations] == [1]
    assert answer.citations[0].source == "docs/volcano.md"
    assert [p.id for p in answer.sources] == [VOLCANO.id, BREAD.id, CHESS.id]
    assert [w["status"] for w in answer.reasoning] == ["ok"] and answer.errors == []
    assert set(answer.timings) == {"rewrite", "retrieve", "rerank", "grade", "generate"}
    # The thread remembers the turn; the next question starts from fresh per-question fields.
    follow_up = agent.ask("and where is the magma?", thread_id="t1")
    assert follow_up.attempts == 1 and follow_up.question == "and where is the magma?"
    rewrite_prompt = tools.rewriter.calls[-1][0][1]["content"]
    # The earlier answer's citations are of the earlier passages: "(1)" in a prompt.
    assert QUESTION in rewrite_prompt and neutralise(CITED) in rewrite_prompt
    history = agent.graph.get_state({"configurable": {"thread_id": "t1"}}).values["history"]
    assert [t["role"] for t in history] == ["user", "assistant"] * 2


def test_the_graph_loops_then_abstains(settings):
    tools = make_tools(settings, grader=FakeLLM("no"))
    answer = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver()).ask(QUESTION)
    assert answer.abstained and answer.answer == prompts.ABSTAIN
    assert answer.attempts == settings.agent.max_retrievals == len(tools.rewriter.calls)
    assert "did not answer" in tools.rewriter.calls[-1][0][1]["content"]  # told it failed
    assert tools.generator.calls == []


def test_the_graph_needs_its_context():
    with pytest.raises(InvalidInputError, match="context=GraphContext"):
        build_graph().invoke(question_state(QUESTION))


class ParentState(AgentState, total=False):
    topic: str


def test_the_graph_as_a_subgraph(settings):
    agent = RAGAgent(settings, tools=make_tools(settings), checkpointer=InMemorySaver())

    def prepare(state: ParentState) -> AgentInput:
        return question_state(f"Where does {state['topic']} come from?")

    parent = StateGraph(ParentState)
    parent.add_node("prepare", prepare)
    parent.add_node("rearag", build_graph())
    parent.add_edge(START, "prepare")
    parent.add_edge("prepare", "rearag")
    parent.add_edge("rearag", END)
    graph = parent.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "parent"}}
    for topic in ("lava", "magma"):  # the second question starts afresh on the same thread
        out = graph.invoke({"topic": topic}, config, context=agent.context())
        answer = Answer.from_state(out)
        assert answer.question == f"Where does {topic} come from?" and answer.attempts == 1
        assert answer.answer == CITED and answer.citations[0].source == "docs/volcano.md"
    # The subgraph returns its output keys only: the parent's history is not doubled.
    assert len(graph.get_state(config).values["history"]) == 2
