"""The graph's nodes: each a short function of the state and the tools it needs.

A node whose model fails or answers garbage falls back (original question, first-stage order,
score check, extractive answer) and records what happened in `errors`; it never raises.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.config import get_config, get_stream_writer

from rearag.agent import prompts
from rearag.agent.state import AgentState
from rearag.core.config import Settings
from rearag.core.types import Citation, Passage
from rearag.policies.reranker import Reranker
from rearag.tools.llm import LLMBackend
from rearag.tools.retriever import Retriever, reciprocal_rank_fusion


@dataclass
class Tools:
    settings: Settings
    retriever: Retriever
    reranker: Reranker
    rewriter: LLMBackend
    grader: LLMBackend
    generator: LLMBackend


def timed(
    name: str, fn: Callable[[AgentState, Tools], dict[str, Any]]
) -> Callable[[AgentState, Tools], dict[str, Any]]:
    """Wrap a node: add its time to `timings` and its new errors to `errors` (per question
    state, reset by the caller, so these are plain fields rather than reducers)."""

    def node(state: AgentState, tools: Tools) -> dict[str, Any]:
        start = time.perf_counter()
        update = fn(state, tools)
        timings = dict(state.get("timings", {}))
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        update["timings"] = timings
        update["errors"] = state.get("errors", []) + update.get("errors", [])
        return update

    return node


def _complete(
    backend: LLMBackend, messages: list[dict[str, str]], max_new_tokens: int
) -> tuple[str, str | None]:
    """(text, error): a backend exception becomes an error string, not a crash."""
    try:
        [c] = backend.generate([messages], max_new_tokens)
    except Exception as exc:  # any backend failure degrades the node, never the graph
        return "", f"{exc.__class__.__name__}: {str(exc)[:200]}"
    return c.text, c.error


def _complete_streamed(
    backend: LLMBackend, messages: list[dict[str, str]], max_new_tokens: int
) -> tuple[str, str | None]:
    """Like _complete, but sends each piece to the graph's stream as {"token": piece} when the
    caller asked for tokens (configurable stream_tokens) and the backend can stream."""
    stream = getattr(backend, "stream", None)
    if stream is None or not get_config().get("configurable", {}).get("stream_tokens"):
        return _complete(backend, messages, max_new_tokens)
    writer, pieces = get_stream_writer(), []
    try:
        for piece in stream(messages, max_new_tokens):
            pieces.append(piece)
            writer({"token": piece})
    except Exception as exc:  # as in _complete: the node degrades, the graph goes on
        return "".join(pieces), f"{exc.__class__.__name__}: {str(exc)[:200]}"
    return "".join(pieces), None


def rewrite(state: AgentState, tools: Tools) -> dict[str, Any]:
    cfg = tools.settings.rewriter
    question = state["question"]
    history = state.get("history", [])[:-1][-cfg.history_turns :] if cfg.history_turns else []
    messages = prompts.rewrite_messages(
        question, history, state.get("feedback", ""), cfg.num_queries
    )
    text, error = _complete(tools.rewriter, messages, cfg.max_new_tokens)
    queries = prompts.parse_queries(text, question, cfg.num_queries)
    if not history and question not in queries:
        # Without history the question is standalone already: keep it as one of the queries.
        queries = [question, *queries][: cfg.num_queries]
    return {"queries": queries, "errors": [f"rewrite: {error}"] if error else []}


def retrieve(state: AgentState, tools: Tools) -> dict[str, Any]:
    k = tools.settings.agent.retrieve_k
    lists, found = [], {}
    for query in state["queries"]:
        hits = tools.retriever.search(query, k=k)
        lists.append([h.id for h in hits])
        found.update({h.id: h for h in hits})
    fused = reciprocal_rank_fusion(lists, k=tools.settings.retriever.rrf_k)[:k]
    passages = [found[i].model_copy(update={"score": s}) for i, s in fused]
    return {"passages": passages, "attempts": state.get("attempts", 0) + 1}


def rerank(state: AgentState, tools: Tools) -> dict[str, Any]:
    passages = state["passages"]
    query = state["queries"][0] if state.get("queries") else state["question"]
    try:
        ranked = tools.reranker.rank(query, passages)
    except Exception as exc:
        return {
            "errors": [f"rerank: {exc.__class__.__name__}: {str(exc)[:200]}"],
            "rerank_traces": [],
        }
    return {
        "passages": [r.passage() for r in ranked.results],
        "rerank_traces": [w.model_dump() for w in ranked.windows],
    }


def _overlap(question: str, passages: list[Passage]) -> float:
    terms = {w for w in re.findall(r"[a-z0-9]{3,}", question.lower())} - _STOP
    if not terms:
        return 0.0
    text = " ".join(p.text.lower() for p in passages)
    return sum(t in text for t in terms) / len(terms)


_STOP = {
    "the",
    "and",
    "for",
    "what",
    "which",
    "who",
    "how",
    "does",
    "with",
    "that",
    "this",
    "are",
    "was",
    "were",
    "from",
    "about",
    "into",
    "can",
    "why",
    "when",
    "where",
    "did",
}


def grade(state: AgentState, tools: Tools) -> dict[str, Any]:
    cfg = tools.settings.grader
    top = state.get("passages", [])[: cfg.passages]
    if not top:
        return {"grade": "insufficient", "grade_by": "score", "feedback": "no passages found"}
    verdict, errors = None, []
    if cfg.use_model:
        messages = prompts.grade_messages(state["question"], [p.text for p in top], 400)
        text, error = _complete(tools.grader, messages, 4)
        verdict = prompts.parse_grade(text)
        if error:
            errors.append(f"grade: {error}")
    by = "model"
    if verdict is None:  # the model did not say yes or no: fall back to the score check
        verdict, by = _overlap(state["question"], top) >= cfg.min_overlap, "score"
    update: dict[str, Any] = {
        "grade": "ok" if verdict else "insufficient",
        "grade_by": by,
        "errors": errors,
    }
    if not verdict:
        update["feedback"] = "the passages did not answer: " + "; ".join(state["queries"])
    return update


def after_grade(state: AgentState, tools: Tools) -> str:
    if state["grade"] == "ok" or state["attempts"] >= tools.settings.agent.max_retrievals:
        return "generate"
    return "rewrite"


_CITE = re.compile(r"\[(\d{1,3})\]")


def generate(state: AgentState, tools: Tools) -> dict[str, Any]:
    cfg = tools.settings.generator
    shown = state.get("passages", [])[: cfg.passages]
    question = state["question"]
    if state["grade"] != "ok" or not shown:
        return _answer(question, prompts.ABSTAIN, [], shown, abstained=True)
    history = state.get("history", [])[:-1][-tools.settings.rewriter.history_turns :]
    messages = prompts.generate_messages(
        question, [p.text for p in shown], history, cfg.max_passage_chars
    )
    text, error = _complete_streamed(tools.generator, messages, cfg.max_new_tokens)
    errors = [f"generate: {error}"] if error else []
    text = text.strip()
    # An unusable answer is replaced by the best passage itself, cited, and the reason noted.
    problem = (
        "no answer from the model"
        if not text
        else "the answer repeated the system prompt and was withheld"
        if prompts.leaks_system_prompt(text)
        else "the answer cited no passage, so it is not grounded"
        if not any(1 <= int(n) <= len(shown) for n in _CITE.findall(text))
        else ""
    )
    if problem:
        errors.append(f"generate: {problem}; quoting the top passage instead")
        text = f"{prompts.clean_passage(shown[0].text, 400)} [1]"
    # Citations the passages cannot back are removed, and counted.
    invalid = 0

    def check(match: re.Match[str]) -> str:
        nonlocal invalid
        if 1 <= int(match.group(1)) <= len(shown):
            return match.group(0)
        invalid += 1
        return ""

    text = re.sub(r"[ \t]+", " ", _CITE.sub(check, text)).strip()
    cited = sorted({int(n) for n in _CITE.findall(text)})
    update = _answer(question, text, cited, shown, abstained=False)
    update["invalid_citations"] = invalid
    update["errors"] = errors
    return update


def _answer(
    question: str, text: str, cited: list[int], shown: list[Passage], *, abstained: bool
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
