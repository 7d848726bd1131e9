"""Every LLM node of the agent on one scripted OpenAI-compatible server (openai_server): a
reply per node, chosen by the node's system prompt."""

from __future__ import annotations

from collections.abc import Callable

from langgraph.checkpoint.memory import InMemorySaver

from rearag.agent import prompts
from rearag.agent.rag import RAGAgent

Replies = dict[str, Callable[[list[dict[str, str]]], str] | str]


def router(replies: Replies, seen: list[str]):
    """One server, one reply per node, chosen by the node's system prompt."""

    def reply(messages: list[dict[str, str]]) -> str:
        system = messages[0]["content"]
        node = (
            "rewrite"
            if system == prompts.REWRITE_SYSTEM
            else "grade"
            if system == prompts.GRADE_SYSTEM
            else "generate"
            if system == prompts.GENERATE_SYSTEM
            else "rerank"
        )
        seen.append(node)
        answer = replies.get(node, "")
        return answer(messages) if callable(answer) else answer

    return reply


def agent_with(api, replies: Replies, **overrides) -> tuple[RAGAgent, list[str]]:
    """An agent on the `api` fixture's collection and server, its nodes answering `replies`."""
    script, settings = api
    if overrides:
        settings = settings.model_copy(update=overrides)
    seen: list[str] = []
    script.default = router(replies, seen)
    return RAGAgent(settings, checkpointer=InMemorySaver()), seen


GOOD = {
    "rewrite": "volcano lava magma",
    "grade": "yes",
    "rerank": "[1] > [2] > [3]",
    "generate": "Lava comes from a magma chamber [1].",
}
