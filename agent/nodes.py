"""The graph's nodes: each a short function of the state and the run's context (its tools).

A node whose model fails or answers garbage falls back (the question as the query, first-stage
order, the evidence score, an extractive answer) and records what happened in `errors`; it never
raises. Nothing a model writes is used unchecked: queries must stay on the question's topic,
verdicts come from models trusted to judge, and answer sentences must be supported by what they
cite.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from langgraph.runtime import Runtime

from rearag.agent import evidence, grounding, prompts
from rearag.agent.state import AgentState, AgentTools, GraphContext
from rearag.core.errors import InvalidInputError
from rearag.core.filters import Where
from rearag.core.sanitize import neutralise
from rearag.core.text import error_text, terms
from rearag.core.types import AnswerMode, Citation, Passage
from rearag.tools.llm import Completion, LLMBackend, Message, Streaming
from rearag.tools.retriever import reciprocal_rank_fusion

Node = Callable[[AgentState, Runtime[GraphContext]], dict[str, Any]]


def needs_context(fn: Node) -> Node:
    """The node, refusing to run without its tools: a graph invoked without
    `context=GraphContext(...)` fails with one clear error, not an AttributeError mid-node."""

    def node(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        if not isinstance(runtime.context, GraphContext):
            raise InvalidInputError(
                "the rearag graph runs with its tools: pass context=GraphContext(tools) "
                "(or RAGAgent.context()) to invoke or stream"
            )
        return fn(state, runtime)

    return node


def accounted(name: str, fn: Node) -> Node:
    """The node, adding its time to `timings`, its model tokens to `usage` and its new errors
    to `errors` (per question state, reset by `question_state`, so these are plain fields
    rather than reducers)."""

    def node(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
        start = time.perf_counter()
        update = fn(state, runtime)
        timings = dict(state.get("timings", {}))
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        update["timings"] = timings
        usage = dict(state.get("usage", {}))
        for key, tokens in update.get("usage", {}).items():
            usage[key] = usage.get(key, 0) + tokens
        update["usage"] = usage
        update["errors"] = state.get("errors", []) + update.get("errors", [])
        return update

    return node


def _complete(
    backend: LLMBackend,
    messages: list[Message],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    stop: list[str] | None = None,
    on_piece: Callable[[str], None] | None = None,
) -> Completion:
    """The backend's completion; a backend exception becomes its `error`, not a crash. With
    `on_piece` and a backend that streams, each piece is handed to it as it arrives."""
    pieces: list[str] = []
    try:
        if on_piece is None or not isinstance(backend, Streaming):
            [c] = backend.generate([messages], max_new_tokens, temperature, stop)
            return c
        for item in backend.stream(messages, max_new_tokens, temperature, stop):
            if isinstance(item, Completion):
                return item
            pieces.append(item)
            on_piece(item)
    except Exception as exc:  # any backend failure degrades the node, never the graph
        return Completion(text="".join(pieces), error=error_text(exc))
    return Completion(text="".join(pieces))


def _usage(*completions: Completion) -> dict[str, int]:
    """The tokens the completions read and wrote, for the state's `usage`."""
    return {
        "prompt_tokens": sum(c.prompt_tokens for c in completions),
        "completion_tokens": sum(c.completion_tokens for c in completions),
    }


def _earlier_turns(state: AgentState, n: int) -> list[Message]:
    """The last `n` turns before the question being answered (the history's last turn)."""
    return state.get("history", [])[:-1][-n:] if n else []


class Rewrite(NamedTuple):
    """What the rewriter gave: the queries to search, what went wrong, what it cost."""

    queries: list[str]  # the question first, then the written queries that stay on its topic
    notes: list[str]  # for the state's `errors`
    completion: Completion | None  # the rewriter's; None when it was not asked


def written_queries(
    tools: AgentTools, question: str, history: list[Message], feedback: str
) -> Rewrite:
    """The question first, then the rewriter's queries that stay on its topic: as close to the
    question (or, in a conversation, to the question with the previous user turn) as
    `rewriter.min_similarity`, by the collection's embedder. A weak model is not asked to
    rewrite a first question, only to resolve a follow-up or to retry a failed search
    (`rewriter.standalone`)."""
    cfg = tools.settings.rewriter
    if not history and not feedback and not cfg.rewrites_standalone:
        # Nothing to resolve, nothing failed yet: search the question.
        return Rewrite([question], [], None)
    messages = prompts.rewrite_messages(question, history, feedback, cfg.num_queries)
    completion = _complete(tools.rewriter, messages, cfg.max_new_tokens)
    written = [q for q in prompts.parse_queries(completion.text, cfg.num_queries) if q != question]
    notes = [f"rewrite: {completion.error}"] if completion.error else []
    if not written:
        return Rewrite([question], notes, completion)
    topics = _topics(question, history)
    vectors = tools.encode(topics + written)
    closeness = (vectors[len(topics) :] @ vectors[: len(topics)].T).max(axis=1)
    kept = [q for q, sim in zip(written, closeness, strict=True) if sim >= cfg.min_similarity]
    if len(kept) < len(written):
        notes.append(f"rewrite: kept {len(kept)} of {len(written)} written queries (off topic)")
    return Rewrite([question, *kept], notes, completion)


def _topics(question: str, history: list[Message]) -> list[str]:
    """What the question is about: the question, and in a conversation also the question with
    the previous user turn ("and its lava?" after "Tell me about volcanoes")."""
    earlier = [t["content"] for t in history if t["role"] == "user"]
    return [question, f"{earlier[-1]} {question}"] if earlier else [question]


def rewrite(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    tools = runtime.context.tools
    history = _earlier_turns(state, tools.settings.rewriter.history_turns)
    rewritten = written_queries(tools, state["question"], history, state.get("feedback", ""))
    usage = _usage(rewritten.completion) if rewritten.completion else {}
    return {"queries": rewritten.queries, "errors": rewritten.notes, "usage": usage}


def fused_search(
    tools: AgentTools, queries: list[str], where: Where | None = None
) -> list[Passage]:
    """The `agent.retrieve_k` best passages for the question and its rewrites.

    Two reciprocal rank fusions, for two reasons: `retriever.search` fuses one query's dense
    and BM25 rankings (hybrid mode: two scorers, `retriever.candidates` deep); here the
    queries' rankings are fused, so that a passage several queries find rises above one that
    a single query finds. Both fuse with `retriever.rrf_k`; each query brings its
    `agent.retrieve_k` best hits, among the chunks `where` keeps."""
    k = tools.settings.agent.retrieve_k
    rankings, found = [], {}
    for query in queries:
        hits = tools.retriever.search(query, k=k, where=where)
        rankings.append([h.id for h in hits])
        found.update({h.id: h for h in hits})
    fused = reciprocal_rank_fusion(rankings, k=tools.settings.retriever.rrf_k)[:k]
    return [found[i].model_copy(update={"score": s}) for i, s in fused]


def retrieve(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    passages = fused_search(runtime.context.tools, state["queries"], runtime.context.where)
    return {"passages": passages, "attempts": state.get("attempts", 0) + 1}


def rerank(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    passages = state["passages"]
    query = state["queries"][0] if state.get("queries") else state["question"]
    try:
        ranked = runtime.context.tools.reranker.rank(query, passages)
    except Exception as exc:
        return {
            "errors": [f"rerank: {error_text(exc)}"],
            "rerank_traces": [],
        }
    return {
        "passages": [r.passage() for r in ranked.results],
        "rerank_traces": [w.model_dump() for w in ranked.windows],
        "usage": ranked.usage.model_dump(exclude={"total_tokens"}),
    }


def grade(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """Enough evidence? The evidence decides (`evidence.weigh`): the best sentence of the top
    passages must be on the question's topic (in a conversation, of the question or of the
    question with the previous user turn) and, for a question that stands alone, score as an
    answer; a trusted grader model may then still say no."""
    tools = runtime.context.tools
    cfg = tools.settings.grader
    top = state.get("passages", [])[: cfg.passages]
    topics = _topics(state["question"], state.get("history", [])[:-1])
    weight = evidence.weigh(topics, top, tools.encode)
    # A name the question asks about that no passage mentions: the passages are on a nearby
    # topic (a sign-off for "GPG-sign"), however similar they read.
    missing = evidence.missing_names(state["question"], top)
    on_topic = weight.similarity >= cfg.min_similarity
    # The answer bar reads the question's own words and the kind of answer it asks for; a
    # follow-up ("which opening?") leaves them in the earlier turn, so its topic decides.
    follow_up = len(topics) > 1
    answers = follow_up or weight.score >= cfg.min_score
    verdict, by, errors, usage = on_topic and answers and not missing, "score", [], {}
    if verdict and cfg.asks_model:
        messages = prompts.grade_messages(
            state["question"], [p.text for p in top], cfg.max_passage_chars
        )
        completion = _complete(tools.grader, messages, cfg.max_new_tokens)
        usage = _usage(completion)
        if completion.error:
            errors.append(f"grade: {completion.error}")
        said = prompts.parse_grade(completion.text)
        if said is not None:
            verdict, by = said, "model"
    update: dict[str, Any] = {
        "grade": "ok" if verdict else "insufficient",
        "grade_by": by,
        "evidence": round(weight.similarity, 4),
        "answer_score": round(weight.score, 4),
        "errors": errors,
        "usage": usage,
    }
    if missing:
        errors.append(f"grade: the passages do not mention {', '.join(missing)}")
    elif on_topic and not answers:
        errors.append(
            f"grade: no sentence answers closely enough (score {weight.score:.2f} < "
            f"{cfg.min_score}): on the topic, without the question's words or the kind of "
            "answer it asks for"
        )
    if not verdict:
        found = "no passages found" if not top else "the passages did not answer"
        update["feedback"] = f"{found}: " + "; ".join(state.get("queries", []))
    return update


def after_grade(
    state: AgentState, runtime: Runtime[GraphContext]
) -> Literal["generate", "rewrite"]:
    max_retrievals = runtime.context.tools.settings.agent.max_retrievals
    if state["grade"] == "ok" or state["attempts"] >= max_retrievals:
        return "generate"
    return "rewrite"


def generate(state: AgentState, runtime: Runtime[GraphContext]) -> dict[str, Any]:
    """The answer: written by the model and checked sentence by sentence against the passages
    it cites, or, when the model is not trusted to write or its draft keeps nothing, the best
    sentences of the passages, each cited. When the run streams, each checked sentence goes to
    the stream as {"content": text} as soon as it is complete; joined, they are the answer."""
    tools = runtime.context.tools
    cfg = tools.settings.generator
    sources = state.get("passages", [])[: cfg.passages]  # shown to it, the answer's sources
    question = state["question"]
    if state["grade"] != "ok" or not sources:
        return _answer(prompts.ABSTAIN, sources, "abstained")
    text, errors, dropped, usage = "", [], 0, {}
    mode: AnswerMode = "extractive"
    if cfg.writes:
        checked, completion = _draft(state, runtime, sources)
        text, dropped, usage = checked.text, checked.dropped_citations, _usage(completion)
        if completion.error:
            errors.append(f"generate: {completion.error}")
        if checked.leaked:
            errors.append("generate: the draft repeated the system prompt; withheld from there")
        if not text:
            errors.append(
                "generate: no sentence of the draft is supported by the passages it was "
                "shown; answering with sentences extracted from them instead"
            )
        elif checked.dropped_sentences:
            errors.append(
                f"generate: {checked.dropped_sentences} sentence(s) without support in the "
                "passages removed"
            )
    if text:
        mode = "generated"
    else:
        text = extract(question, sources, tools)
    update = _answer(text, sources, mode)
    update["invalid_citations"] = dropped
    update["errors"] = errors
    update["usage"] = usage
    return update


def _draft(
    state: AgentState, runtime: Runtime[GraphContext], sources: list[Passage]
) -> tuple[grounding.Checked, Completion]:
    """The generator model's draft, checked; when the run streams, its tokens go out as
    {"token": piece} and its checked sentences as {"content": text} as they arrive."""
    context = runtime.context
    cfg = context.tools.settings.generator
    options = context.generation
    messages = prompts.generate_messages(
        state["question"],
        [p.text for p in sources],
        _earlier_turns(state, cfg.history_turns),
        cfg.max_passage_chars,
    )
    grounder = grounding.Grounder(sources, state["question"], cfg.min_support)
    sent = 0

    def send(sentences: list[str]) -> None:
        nonlocal sent
        if not context.stream_tokens:
            return
        for sentence in sentences:
            runtime.stream_writer({"content": f" {sentence}" if sent else sentence})
            sent += 1

    def on_piece(piece: str) -> None:
        runtime.stream_writer({"token": piece})
        send(grounder.feed(piece))

    completion = _complete(
        context.tools.generator,
        messages,
        options.max_new_tokens or cfg.max_new_tokens,
        temperature=options.temperature,
        stop=list(options.stop) or None,
        on_piece=on_piece if context.stream_tokens else None,
    )
    if not grounder.draft:  # nothing streamed: the backend answered in one piece
        send(grounder.feed(completion.text))
    send(grounder.finish())
    return grounder.checked, completion


def extract(question: str, sources: list[Passage], tools: AgentTools) -> str:
    """The best sentences of the passages for the question, each cited once; later ones only
    when they are on the question's topic (the grader's similarity bar). A sentence that leads
    into what follows ("… as follows:", "What: --control-path") brings the next one of its
    passage with it: that is where its answer is; one right below a heading or a term (a
    definition or option list) is labelled with it."""
    best = evidence.score_sentences(question, sources, tools.encode)
    bar = tools.settings.grader.min_similarity
    picked: list[evidence.Sentence] = []
    for s in best:
        if len(picked) >= tools.settings.generator.extract_sentences:
            break
        if picked and (s.similarity < bar or _same_text(s, picked)):
            continue
        picked.append(evidence.with_heading(s, sources))
        follower = evidence.following(s, sources)
        if follower is not None and not _same_text(follower, picked):
            picked.append(follower)
    if not picked:  # passages without a sentence of four words: quote the top one
        return f"{prompts.clean_passage(sources[0].text, 300)} [1]"
    return " ".join(f"{s.text.rstrip()} [{s.passage + 1}]" for s in picked)


def _same_text(sentence: evidence.Sentence, picked: list[evidence.Sentence]) -> bool:
    """Whether an overlapping chunk already gave this sentence (or one holding it)."""
    key = " ".join(sorted(terms(sentence.text)))
    return any(key == " ".join(sorted(terms(p.text))) for p in picked)


def _answer(text: str, sources: list[Passage], mode: AnswerMode) -> dict[str, Any]:
    citations = [
        Citation(number=n, **sources[n - 1].model_dump(exclude={"source", "title"}))
        for n in grounding.cited(text, len(sources))
    ]
    return {
        "answer": text,
        "citations": citations,
        "sources": sources,
        "abstained": mode == "abstained",
        "mode": mode,
        "invalid_citations": 0,
        # Extracted text is neutralised already; a draft may echo a token, and was streamed
        # as written, so only the history the next turn's prompts read is neutralised here.
        # Its markers are its citations (a document's were neutralised before quoting).
        "history": [{"role": "assistant", "content": neutralise(text, citations=False)}],
    }
