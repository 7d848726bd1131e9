"""RAGAgent on fake tools (tests/fakes/agent_tools.py): what `stream` yields (nodes, draft
tokens, checked content, usage) and questions checked before the graph runs."""

from __future__ import annotations

import pytest
from fakes.agent_tools import (
    CITED,
    QUESTION,
    StreamingLLM,
    capable_settings,
    counted,
    make_tools,
)
from langgraph.checkpoint.memory import InMemorySaver

from rearag.agent.rag import RAGAgent
from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError


@pytest.fixture
def settings(home) -> Settings:
    """Settings for capable models: the fake LLMs stand in for models rearag trusts."""
    return capable_settings()


TWO_SENTENCES = (
    "Lava comes from a magma chamber [1]. The sun is made of cheese [1]. "
    "A volcano is a rupture in the crust [1]."
)


def test_stream_nodes_tokens_and_checked_content(settings):
    tools = make_tools(settings, generator=StreamingLLM(TWO_SENTENCES))
    agent = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver())
    events = list(agent.stream(QUESTION, tokens=True))
    tokens = [u["text"] for node, u in events if node == "token"]
    assert len(tokens) == len(TWO_SENTENCES.split()) and "".join(tokens) == TWO_SENTENCES
    assert [n for n, _ in events if n not in ("token", "content")] == [
        *("rewrite", "retrieve", "rerank", "grade", "generate", "answer")
    ]
    answer = events[-1][1]["answer"]
    # Each checked sentence is sent once it is complete, before the draft has ended; the
    # unsupported one never is; joined, they are the answer.
    content = [(i, u["text"]) for i, (node, u) in enumerate(events) if node == "content"]
    assert [text for _, text in content] == [
        "Lava comes from a magma chamber [1].",
        " A volcano is a rupture in the crust [1].",
    ]
    last_token = max(i for i, (node, _) in enumerate(events) if node == "token")
    assert content[0][0] < last_token
    assert "".join(text for _, text in content) == answer.answer
    # Usage: the tokens of every model call (here the rewriter, grader and generator).
    calls = [*tools.rewriter.calls, *tools.grader.calls, *tools.generator.calls]
    assert answer.usage.prompt_tokens == sum(counted(m, "").prompt_tokens for m, _ in calls)
    assert answer.usage.completion_tokens == 3 + 1 + len(TWO_SENTENCES.split())
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_stream_nodes_and_tokens(settings):
    tools = make_tools(settings, generator=StreamingLLM(CITED))
    agent = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver())
    assert list(agent.stream(QUESTION, tokens=True))[-1][1]["answer"].answer == CITED
    # Without `tokens` the streaming backend is not streamed.
    events = list(agent.stream(QUESTION))
    assert "token" not in [n for n, _ in events] and events[-1][1]["answer"].answer == CITED


def test_questions_are_checked_before_the_graph_runs(settings):
    tools = make_tools(settings)
    agent = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver())
    for question in ("   ", "x" * (settings.agent.max_question_chars + 1)):
        with pytest.raises(InvalidInputError):
            agent.ask(question)
        with pytest.raises(InvalidInputError):
            next(agent.stream(question))
    assert tools.rewriter.calls == []
