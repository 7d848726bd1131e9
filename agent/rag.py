"""`RAGAgent(settings).ask(question, thread_id=None) -> Answer`: the graph, ready to use.

Conversations with a `thread_id` are kept by `agent.checkpointer` (SQLite under $REARAG_HOME by
default, or Postgres; or the checkpointer passed in), so a follow-up question is rewritten with
the earlier turns, also after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Durability

from rearag.agent.graph import build_graph, load_tools
from rearag.agent.state import (
    AgentInput,
    AgentTools,
    GenerationOptions,
    GraphContext,
    question_state,
)
from rearag.agent.thread_store import no_conversations, open_checkpointer, store_of
from rearag.core import thread_ids
from rearag.core.config import Settings, load_settings
from rearag.core.errors import InvalidInputError
from rearag.core.filters import Where
from rearag.core.types import Answer
from rearag.tools.llm import Message

log = logging.getLogger("rearag.agent")


class RAGAgent:
    """The graph with its tools, ready to answer questions. Without `settings`, the defaults
    are read with `load_settings()` (./rearag.toml, REARAG_* variables). `tools` replaces the
    ones built from the settings for `collection` (default: `settings.collection`);
    `checkpointer` keeps conversations (default: `agent.checkpointer`, SQLite under
    $REARAG_HOME unless set to a Postgres URL)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        collection: str | None = None,
        tools: AgentTools | None = None,
        checkpointer: Any = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.tools = tools or load_tools(self.settings, collection)
        self.checkpointer = (
            checkpointer if checkpointer is not None else open_checkpointer(self.settings)
        )
        self.threads = store_of(self.checkpointer, self.settings)
        self.graph = build_graph(self.checkpointer)
        # A question without a thread: no one can continue it, so nothing is saved (and a
        # conversations database that is down does not stop it).
        self._unsaved = build_graph(None)

    def context(
        self,
        *,
        tokens: bool = False,
        generation: GenerationOptions | None = None,
        where: Where | dict[str, Any] | str | None = None,
    ) -> GraphContext:
        """What a run of the graph needs besides its input: this agent's tools. Pass it to a
        parent graph that embeds `build_graph()` as a subgraph. With `tokens`, the draft's
        pieces and the answer's checked sentences go to the "custom" stream mode as the
        generator writes them. `generation`: this run's settings for the generator's draft.
        `where`: search only chunks whose metadata it keeps (rearag.core.filters)."""
        return GraphContext(
            self.tools,
            stream_tokens=tokens,
            generation=generation or GenerationOptions(),
            where=where if isinstance(where, Where) or where is None else Where.parse(where),
        )

    @property
    def reranks_with_model(self) -> bool:
        """Whether the reranker asks a model; false when it keeps the search order unasked
        (`reranker.use_model = false`, or the first-stage policy)."""
        return self.tools.reranker.policy.kind != "none"

    def check_question(self, question: str) -> str:
        """The question, stripped; InvalidInputError when it is empty or over the limit."""
        question = question.strip() if isinstance(question, str) else ""
        limit = self.settings.agent.max_question_chars
        if not question:
            raise InvalidInputError("the question is empty: ask something")
        if len(question) > limit:
            raise InvalidInputError(
                f"the question is {len(question)} characters; the limit is {limit} "
                "(agent.max_question_chars): shorten it"
            )
        return question

    def _prepare(
        self, question: str, thread_id: str | None, history: list[Message] | None
    ) -> tuple[AgentInput, RunnableConfig]:
        state_in = question_state(self.check_question(question), history or ())
        # A thread id keeps the conversation; without one every question starts afresh.
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}} if thread_id else {}
        return state_in, config

    def _durability(self, thread_id: str | None) -> Durability | None:
        """One checkpoint at the end of a run, rather than one per step, unless the thread
        keeps LangGraph's step-by-step history (None: LangGraph's default)."""
        keep_all = thread_id is not None and self.settings.agent.keep_checkpoints == "all"
        return None if keep_all else "exit"

    @contextmanager
    def _run_on(self, thread_id: str | None, wait_s: float | None) -> Iterator[None]:
        """Around one run of the graph on a thread, with our SQLite or Postgres checkpointer
        (another is left alone): a run that raises, or a stream given up midway, leaves the
        thread as it was, not with a question and no answer; a run that ends leaves only the
        thread's latest checkpoint (agent.keep_checkpoints = "latest"), the history being in
        it. The run holds the thread's lock (`ThreadStore.lock`) throughout, so the undo and
        keep-latest touch only its own writes and no other process's turn is lost."""
        store = self.threads
        if store is None or thread_id is None:
            yield
            return
        wait_s = self.settings.serve.request_timeout_s if wait_s is None else wait_s
        with store.failures(), store.lock(thread_id, wait_s):
            before = store.latest_id(thread_id)
            try:
                yield
            except BaseException:
                store.undo(thread_id, before)
                raise
            if self.settings.agent.keep_checkpoints == "latest":
                try:
                    store.keep_latest(thread_id)
                except Exception as exc:  # the turn is saved: trimming can wait for a prune
                    log.warning(
                        "could not trim thread checkpoints (%s); `rearag threads prune` will",
                        type(exc).__name__,
                    )

    def ask(
        self,
        question: str,
        thread_id: str | None = None,
        history: list[Message] | None = None,
        generation: GenerationOptions | None = None,
        where: Where | dict[str, Any] | str | None = None,
    ) -> Answer:
        """The answer `stream` ends with: one path for a question, whether its steps are
        watched (`rearag ask`, the server) or not (MCP, the LangChain tool, `eval qa`).
        `history`: earlier turns ({"role", "content"}) kept by a stateless caller, such as
        an OpenAI client that resends the conversation; a thread keeps its own instead.
        `generation`: this question's max_new_tokens, temperature and stop for the draft.
        `where`: answer only from chunks whose metadata it keeps (rearag.core.filters)."""
        *_, (_, last) = self.stream(
            question, thread_id, history=history, generation=generation, where=where
        )
        return last["answer"]

    def stream(
        self,
        question: str,
        thread_id: str | None = None,
        *,
        tokens: bool = False,
        history: list[Message] | None = None,
        generation: GenerationOptions | None = None,
        wait_s: float | None = None,
        where: Where | dict[str, Any] | str | None = None,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """(node, its update) as each node finishes, then ("answer", {"answer": Answer}).
        With `tokens`, also, while the answer is generated, ("token", {"text": piece}) for the
        unchecked draft (when the generator's backend streams) and ("content", {"text": piece})
        for the answer's text as each sentence passes the check: joined, the content pieces
        are the start of the final answer's text. `wait_s`: how long the turn waits for
        another process's turn on its thread before ThreadBusy (default:
        serve.request_timeout_s). `where`: search only chunks whose metadata it keeps."""
        thread_id = thread_ids.thread_id(thread_id)
        context = self.context(tokens=tokens, generation=generation, where=where)  # checks it
        if thread_id is not None and self.checkpointer is None:  # a read-only home
            raise no_conversations(self.settings.home)
        state_in, config = self._prepare(question, thread_id, history)
        final: dict[str, Any] = {}
        graph = self.graph if thread_id is not None else self._unsaved
        with self._run_on(thread_id, wait_s):
            for mode, chunk in graph.stream(
                state_in,
                config,
                context=context,
                stream_mode=["updates", "custom", "values"],
                durability=self._durability(thread_id),
            ):
                if mode == "values":
                    # The output after each step, the last one final: what `invoke` returns,
                    # without reading the checkpoint back.
                    final = chunk
                elif mode == "custom":
                    for kind, text in chunk.items():  # {"token": piece} or {"content": piece}
                        yield kind, {"text": text}
                else:
                    for node, update in chunk.items():
                        yield node, update or {}
        # Outside the run: a caller that stops once it has the answer keeps the turn.
        yield "answer", {"answer": Answer.from_state(final, thread_id)}


# Why a reranker window kept the first-stage order, by its status (policies/reranker.py).
KEPT_ORDER = {
    "wrong_format": "the model's answer was not a ranking",
    "backend_error": "the model call failed",
}
# What was set right in a ranking the model did give.
MENDED = {
    "repetition": "it named a passage twice, the repeat was dropped",
    "missing_documents": "it left passages out, they follow in search order",
}


def describe_step(node: str, update: dict[str, Any], *, reranks_with_model: bool = True) -> str:
    """One line about a finished node, for people watching a question being answered.
    `reranks_with_model`: false when the reranker keeps the search order unasked
    (`RAGAgent.reranks_with_model`)."""
    if node == "rewrite":
        return f"rewrite: {' | '.join(update.get('queries', []))}"
    if node == "retrieve":
        return (
            f"retrieve: {len(update.get('passages', []))} passages (round {update.get('attempts')})"
        )
    if node == "rerank":
        return f"rerank: {describe_rerank(update, reranks_with_model)}"
    if node == "grade":
        return (
            f"grade: {update.get('grade')} (by {update.get('grade_by')}; "
            f"evidence {update.get('evidence', 0.0):.2f}, "
            f"answer score {update.get('answer_score', 0.0):.2f})"
        )
    if node == "generate":
        mode = update.get("mode", "generated")
        if mode == "abstained":
            return "generate: abstained"
        return f"generate: {mode}, {len(update.get('citations', []))} citation(s)"
    return node


def describe_rerank(update: dict[str, Any], reranks_with_model: bool = True) -> str:
    """What the reranker did, in words: a bare status such as `wrong_format` does not say
    that the search order was kept, nor why."""
    failed = [e for e in update.get("errors", []) if e.startswith("rerank: ")]
    if failed:
        return f"kept the search order (the reranker failed: {_short(failed[0][8:])})"
    windows = update.get("rerank_traces", [])
    if not windows:
        return "nothing to rerank"
    if not reranks_with_model:
        return (
            "kept the search order (the reranker asks no model: reranker.use_model is false, "
            "or the policy is first-stage)"
        )
    n = len(windows)
    kept = [w for w in windows if w["status"] in KEPT_ORDER]
    mended = [w for w in windows if w["status"] in MENDED]
    if kept:
        line = f"kept the search order for {len(kept)} of {_windows(n)} ({_why(kept, KEPT_ORDER)})"
    else:
        line = f"{_windows(n)} ranked by the model"
    if mended:
        line += f"; {len(mended)} ranking(s) mended ({_why(mended, MENDED)})"
    return line


def _windows(n: int) -> str:
    return f"{n} window{'' if n == 1 else 's'}"


def _why(windows: list[dict[str, Any]], reasons: dict[str, str]) -> str:
    """Each status's reason in words, the status itself, and the first error it came with."""
    parts = []
    for status in dict.fromkeys(w["status"] for w in windows):
        error = next((w["error"] for w in windows if w["status"] == status and w.get("error")), "")
        parts.append(f"{reasons[status]}: {status}" + (f", {_short(error)}" if error else ""))
    return "; ".join(parts)


def _short(text: str, limit: int = 120) -> str:
    """The first line of an error, cut: API errors run over many lines."""
    line = text.strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
