"""rearag inside other LangGraph agents: as a tool of a ReAct agent (the model ⇄ tools loop that
`create_react_agent` builds, written out with ToolNode since that helper is deprecated) driven by
a scripted chat model, no network; and its compiled graph as a subgraph node of a parent graph."""

from __future__ import annotations

from typing import Any

from fakes.scripted_agent import GOOD, agent_with
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from rearag.agent.graph import build_graph
from rearag.agent.serving.langchain_tool import as_tool
from rearag.agent.state import AgentInput, AgentState, question_state


class ScriptedChatModel(GenericFakeChatModel):
    """Replies from a script; tools are "bound" by ignoring them, as the script knows them."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedChatModel:
        return self


def react_agent(model: ScriptedChatModel, tools: list[Any]) -> Any:
    bound = model.bind_tools(tools)

    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode(tools))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile()


def test_as_tool_in_a_react_agent(api):
    agent, seen = agent_with(api, GOOD)
    tool = as_tool(agent, name="docs", thread_id="tool-thread")
    assert tool.name == "docs" and "agent-docs" in tool.description
    assert set(tool.args) == {"question"}
    model = ScriptedChatModel(
        messages=iter(
            [
                AIMessage(
                    "",
                    tool_calls=[
                        {
                            "name": "docs",
                            "args": {"question": "Where does lava come from?"},
                            "id": "call-1",
                        }
                    ],
                ),
                AIMessage("Lava comes from a magma chamber, says the documentation."),
            ]
        )
    )
    react = react_agent(model, [tool])
    result = react.invoke({"messages": [("user", "Where does lava come from?")]})
    tool_message = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert tool_message.content.startswith(GOOD["generate"])
    assert "Sources:\n[1] Volcanoes" in tool_message.content
    assert tool_message.artifact["citations"][0]["source"].endswith("volcano.md")
    assert result["messages"][-1].content.startswith("Lava comes from a magma chamber")
    assert seen == ["rewrite", "rerank", "grade", "generate"]


class ParentState(AgentState, total=False):
    topic: str
    report: str


def test_graph_as_a_subgraph_node(api):
    agent, _ = agent_with(api, GOOD)
    rag = build_graph()  # the parent's checkpointer covers the subgraph

    def prepare(state: ParentState) -> AgentInput:
        return question_state(f"Where does {state['topic']} come from?")

    def report(state: ParentState) -> dict[str, Any]:
        return {"report": f"{state['topic']}: {state['answer']} ({len(state['citations'])} cited)"}

    parent = StateGraph(ParentState)
    parent.add_node("prepare", prepare)
    parent.add_node("rearag", rag)
    parent.add_node("report", report)
    parent.add_edge(START, "prepare")
    parent.add_edge("prepare", "rearag")
    parent.add_edge("rearag", "report")
    parent.add_edge("report", END)
    graph = parent.compile(checkpointer=InMemorySaver())
    # The context (the agent's tools) is handed down to the subgraph's nodes.
    out = graph.invoke(
        {"topic": "lava"}, {"configurable": {"thread_id": "parent"}}, context=agent.context()
    )
    assert out["report"] == f"lava: {GOOD['generate']} (1 cited)"
    assert out["citations"][0].source.endswith("volcano.md")
    nodes = [
        next(iter(step))
        for step in graph.stream(
            {"topic": "lava"},
            {"configurable": {"thread_id": "parent-2"}},
            context=agent.context(),
            subgraphs=False,
        )
    ]
    assert nodes == ["prepare", "rearag", "report"]
