"""The graph's nodes: each a short function of the state and the run's context (its tools).

A node whose model fails or answers garbage falls back (original question, first-stage order,
score check, extractive answer) and records what happened in `errors`; it never raises.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import StreamWriter

from rearag.agent import grounding, prompts
from rearag.agent.state import AgentState, GraphContext
from rearag.core.errors import InvalidInputError
from rearag.core.types import Citation, Passage
from rearag.tools.llm import LLMBackend, Message, Streaming
from rearag.tools.retriever import reciprocal_rank_fusion

Node = Callable[[AgentState, Runtime[GraphContext]], dict[str, Any]]


def timed(name: str, fn: Node) -> Node:
    """Wrap a node: add its time to `timings` and its new errors to `errors` (per question
    state, reset by `question_state`, so these are plain fields rather than reducers)."""

    def node(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        if not isinstance(runtime.context, GraphContext):
            raise InvalidInputError(
                "the rearag graph runs with its tools: pass context=GraphContext(tools) "
                "(or RAGAgent.context()) to invoke or stream"
            )
        start = time.perf_counter()
        update = fn(state, runtime)
        timings = dict(state.get("timings", {}))
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        update["timings"] = timings
        update["errors"] = state.get("errors", []) + update.get("errors", [])
        return update

    return node


def _complete(
    backend: LLMBackend,
    messages: list[Message],
    max_new_tokens: int,
    writer: StreamWriter | None = None,
) -> tuple[str, str | None]:
    """(text, error): a backend exception becomes an error string, not a crash. With a
    `writer` and a backend that streams, each piece is also written as {"token": piece}."""
    pieces: list[str] = []
    try:
        if writer is None or not isinstance(backend, Streaming):
            [c] = backend.generate([messages], max_new_tokens)
            return c.text, c.error
        for piece in backend.stream(messages, max_new_tokens):
            pieces.append(piece)
            writer({"token": piece})
    except Exception as exc:  # any backend failure degrades the node, never the graph
        return "".join(pieces), f"{exc.__class__.__name__}: {str(exc)[:200]}"
    return "".join(pieces), None


def _earlier_turns(state: AgentState, n: int) -> list[Message]:
    """The last `n` turns before the question being answered (the history's last turn)."""
    return state.get("history", [])[:-1][-n:] if n else []


def rewrite(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    tools = runtime.context.tools
    cfg = tools.settings.rewriter
    question = state["question"]
    history = _earlier_turns(state, cfg.history_turns)
    messages = prompts.rewrite_messages(
        question, history, state.get("feedback", ""), cfg.num_queries
    )
    text, error = _complete(tools.rewriter, messages, cfg.max_new_tokens)
    queries = prompts.parse_queries(text, question, cfg.num_queries)
    if not history and question not in queries:
        # Without history the question is standalone already: keep it as one of the queries.
        queries = [question, *queries][: cfg.num_queries]
    return {"queries": queries, "errors": [f"rewrite: {error}"] if error else []}


def retrieve(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    tools = runtime.context.tools
    k = tools.settings.agent.retrieve_k
    lists, found = [], {}
    for query in state["queries"]:
        hits = tools.retriever.search(query, k=k)
        lists.append([h.id for h in hits])
        found.update({h.id: h for h in hits})
    fused = reciprocal_rank_fusion(lists, k=tools.settings.retriever.rrf_k)[:k]
    passages = [found[i].model_copy(update={"score": s}) for i, s in fused]
    return {"passages": passages, "attempts": state.get("attempts", 0) + 1}


def rerank(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    passages = state["passages"]
    query = state["queries"][0] if state.get("queries") else state["question"]
    try:
        ranked = runtime.context.tools.reranker.rank(query, passages)
    except Exception as exc:
        return {
            "errors": [f"rerank: {exc.__class__.__name__}: {str(exc)[:200]}"],
            "rerank_traces": [],
        }
    return {
        "passages": [r.passage() for r in ranked.results],
        "rerank_traces": [w.model_dump() for w in ranked.windows],
    }


def grade(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    tools = runtime.context.tools
    cfg = tools.settings.grader
    top = state.get("passages", [])[: cfg.passages]
    if not top:
        return {"grade": "insufficient", "grade_by": "score", "feedback": "no passages found"}
    verdict, errors = None, []
    if cfg.use_model:
        messages = prompts.grade_messages(
            state["question"], [p.text for p in top], cfg.max_passage_chars
        )
        text, error = _complete(tools.grader, messages, cfg.max_new_tokens)
        verdict = prompts.parse_grade(text)
        if error:
            errors.append(f"grade: {error}")
    by = "model"
    if verdict is None:  # the model did not say yes or no: fall back to the score check
        verdict, by = grounding.overlap(state["question"], top) >= cfg.min_overlap, "score"
    update: dict[str, Any] = {
        "grade": "ok" if verdict else "insufficient",
        "grade_by": by,
        "errors": errors,
    }
    if not verdict:
        update["feedback"] = "the passages did not answer: " + "; ".join(state["queries"])
    return update


def after_grade(
    state: AgentState, runtime: Runtime[GraphContext]
) -> Literal["generate", "rewrite"]:
    max_retrievals = runtime.context.tools.settings.agent.max_retrievals
    if state["grade"] == "ok" or state["attempts"] >= max_retrievals:
        return "generate"
    return "rewrite"


def generate(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    tools = runtime.context.tools
    cfg = tools.settings.generator
    shown = state.get("passages", [])[: cfg.passages]
    question = state["question"]
    if state["grade"] != "ok" or not shown:
        return _answer(prompts.ABSTAIN, [], shown, abstained=True)
    messages = prompts.generate_messages(
        question,
        [p.text for p in shown],
        _earlier_turns(state, cfg.history_turns),
        cfg.max_passage_chars,
    )
    writer = runtime.stream_writer if runtime.context.stream_tokens else None
    text, error = _complete(tools.generator, messages, cfg.max_new_tokens, writer)
    errors = [f"generate: {error}"] if error else []
    text = text.strip()
    # An unusable answer is replaced by the best passage itself, cited, and the reason noted.
    problem = (
        "no answer from the model"
        if not text
        else "the answer repeated the system prompt and was withheld"
        if prompts.leaks_system_prompt(text)
        else "the answer cited no passage, so it is not grounded"
        if not grounding.cited(text, len(shown))
        else ""
    )
    if problem:
        errors.append(f"generate: {problem}; quoting the top passage instead")
        text = f"{prompts.clean_passage(shown[0].text, 400)} [1]"
    # Citations the passages cannot back are removed, and counted.
    text, invalid = grounding.drop_invalid_citations(text, len(shown))
    update = _answer(text, grounding.cited(text, len(shown)), shown, abstained=False)
    update["invalid_citations"] = invalid
    update["errors"] = errors
    return update


def _answer(
    text: str, cited: list[int], shown: list[Passage], *, abstained: bool
) -> dict[str, Any]:
    citations = [
        Citation(number=n, **shown[n - 1].model_dump(exclude={"source", "title"})) for n in cited
    ]
    return {
        "answer": text,
        "citations": citations,
        "sources": shown,
        "abstained": abstained,
        "invalid_citations": 0,
        "history": [{"role": "assistant", "content": text}],
    }
