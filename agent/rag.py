"""`RAGAgent(settings).ask(question, thread_id=None) -> Answer`: the graph, ready to use.

Conversations with a `thread_id` are kept in a SQLite checkpointer under $REARAG_HOME (or the
checkpointer passed in), so a follow-up question is rewritten with the earlier turns, also
after a restart.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

from rearag.agent.graph import build_graph, load_tools
from rearag.agent.nodes import Tools
from rearag.core.config import Settings, load_settings
from rearag.core.errors import RearagError
from rearag.core.types import Answer


def checkpoint_serde() -> Any:
    """LangGraph's serializer, allowed to restore our state types (and nothing else)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(
        allowed_msgpack_modules=[
            ("rearag.core.types", "Passage"),
            ("rearag.core.types", "Citation"),
        ]
    )


def sqlite_checkpointer(settings: Settings) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver

    settings.home.mkdir(parents=True, exist_ok=True)
    # LangGraph may call the saver from worker threads.
    conn = sqlite3.connect(settings.home / "checkpoints.sqlite", check_same_thread=False)
    return SqliteSaver(conn, serde=checkpoint_serde())


class RAGAgent:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        collection: str | None = None,
        tools: Tools | None = None,
        checkpointer: Any = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.tools = tools or load_tools(self.settings, collection)
        self.checkpointer = (
            checkpointer if checkpointer is not None else sqlite_checkpointer(self.settings)
        )
        self.graph = build_graph(self.tools, self.checkpointer)

    def check_question(self, question: str) -> str:
        """The question, stripped; RearagError when it is empty or over the length limit."""
        question = question.strip() if isinstance(question, str) else ""
        limit = self.settings.agent.max_question_chars
        if not question:
            raise RearagError("the question is empty: ask something")
        if len(question) > limit:
            raise RearagError(
                f"the question is {len(question)} characters; the limit is {limit} "
                "(agent.max_question_chars): shorten it"
            )
        return question

    def _prepare(
        self, question: str, thread_id: str | None, history: list[dict[str, str]] | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        question = self.check_question(question)
        state_in = {
            "question": question,
            "history": [*(history or []), {"role": "user", "content": question}],
            "queries": [],
            "feedback": "",
            "attempts": 0,
            "passages": [],
            "rerank_traces": [],
            "answer": "",
            "citations": [],
            "sources": [],
            "abstained": False,
            "invalid_citations": 0,
            "errors": [],
            "timings": {},
        }
        # A thread id keeps the conversation; without one every question starts afresh.
        config = {"configurable": {"thread_id": thread_id or f"once-{uuid.uuid4()}"}}
        return state_in, config

    def ask(
        self,
        question: str,
        thread_id: str | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> Answer:
        """`history`: earlier turns ({"role", "content"}) kept by a stateless caller, such as
        an OpenAI client that resends the conversation; a thread keeps its own instead."""
        state_in, config = self._prepare(question, thread_id, history)
        final = self.graph.invoke(state_in, config)
        return self._answer(final, thread_id)

    def stream(
        self,
        question: str,
        thread_id: str | None = None,
        *,
        tokens: bool = False,
        history: list[dict[str, str]] | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(node, its update) as each node finishes, then ("answer", {"answer": Answer}).
        With `tokens`, also ("token", {"text": piece}) while the answer is generated, when the
        generator's backend streams."""
        state_in, config = self._prepare(question, thread_id, history)
        config["configurable"]["stream_tokens"] = tokens
        for mode, chunk in self.graph.stream(state_in, config, stream_mode=["updates", "custom"]):
            if mode == "custom":
                yield "token", {"text": chunk.get("token", "")}
                continue
            for node, update in chunk.items():
                yield node, update or {}
        final = self.graph.get_state(config).values
        yield "answer", {"answer": self._answer(final, thread_id)}

    def _answer(self, state: dict[str, Any], thread_id: str | None) -> Answer:
        return Answer(
            question=state["question"],
            answer=state["answer"],
            citations=state["citations"],
            sources=state["sources"],
            abstained=state["abstained"],
            queries=state["queries"],
            attempts=state["attempts"],
            invalid_citations=state["invalid_citations"],
            reasoning=state.get("rerank_traces", []),
            errors=state.get("errors", []),
            timings=state.get("timings", {}),
            thread_id=thread_id,
        )


def describe_step(node: str, update: dict[str, Any]) -> str:
    """One line about a finished node, for people watching a question being answered."""
    if node == "rewrite":
        return f"rewrite: {' | '.join(update.get('queries', []))}"
    if node == "retrieve":
        return (
            f"retrieve: {len(update.get('passages', []))} passages (round {update.get('attempts')})"
        )
    if node == "rerank":
        statuses = [w["status"] for w in update.get("rerank_traces", [])]
        return f"rerank: {', '.join(statuses) or 'nothing to rerank'}"
    if node == "grade":
        return f"grade: {update.get('grade')} (by {update.get('grade_by')})"
    if node == "generate":
        return "generate: " + (
            "abstained"
            if update.get("abstained")
            else f"{len(update.get('citations', []))} citation(s)"
        )
    return node
