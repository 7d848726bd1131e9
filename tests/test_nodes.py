"""The graph's nodes one at a time, and the whole graph, on fake tools: a retriever over a
fixed list of passages, the first-stage reranker (no model) and LLM backends with scripted
replies. No Chroma, no model, no network: the file runs in a few seconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from rearag.agent import nodes, prompts
from rearag.agent.graph import build_graph
from rearag.agent.rag import RAGAgent
from rearag.agent.state import AgentInput, AgentState, GraphContext, Tools, question_state
from rearag.core.config import Settings, load_settings
from rearag.core.errors import InvalidInputError
from rearag.core.types import Answer, Passage
from rearag.policies.reranker import Reranker
from rearag.tools.llm import Completion, Message

VOLCANO = Passage(
    id="volcano.md#0",
    text="A volcano is a rupture in the crust of a planet where lava, volcanic ash and gases "
    "escape from a magma chamber below the surface.",
    metadata={"source": "docs/volcano.md", "title": "Volcanoes", "doc_id": "volcano.md"},
)
BREAD = Passage(
    id="bread.txt#0",
    text="Sourdough bread is leavened by a culture of wild yeast and lactic acid bacteria.",
    metadata={"source": "docs/bread.txt", "title": "", "doc_id": "bread.txt"},
)
CHESS = Passage(
    id="chess.html#0",
    text="The Sicilian Defence answers 1.e4 with 1...c5, fighting for the centre.",
    metadata={"source": "docs/chess.html", "title": "Chess openings", "doc_id": "chess.html"},
)
QUESTION = "Where does lava come from?"


class FakeRetriever:
    """`search` answers from a script (query -> passages), else returns every passage."""

    def __init__(self, passages: list[Passage], script: dict[str, list[Passage]] | None = None):
        self.passages, self.script = passages, script or {}
        self.store = SimpleNamespace(name="fake-docs")
        self.queries: list[str] = []

    def search(self, query: str, k: int = 10) -> list[Passage]:
        self.queries.append(query)
        return self.script.get(query, self.passages)[:k]


class FakeLLM:
    """Replies in order, the last one repeated; an Exception reply is raised. Records each
    call's messages and max_new_tokens."""

    model = "fake"

    def __init__(self, *replies: str | Exception):
        self.replies = list(replies) or [""]
        self.calls: list[tuple[list[Message], int]] = []

    def _next(self, messages: list[Message], max_new_tokens: int) -> str:
        self.calls.append((messages, max_new_tokens))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def generate(
        self,
        messages_batch: list[list[Message]],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> list[Completion]:
        return [Completion(text=self._next(m, max_new_tokens)) for m in messages_batch]


class StreamingLLM(FakeLLM):
    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str]:
        yield from re.findall(r"\S+\s*", self._next(messages, max_new_tokens))


CITED = "Lava comes from a magma chamber [1]."


def make_tools(settings: Settings, **replace: Any) -> Tools:
    tools = Tools(
        settings=settings,
        retriever=FakeRetriever([VOLCANO, BREAD, CHESS]),
        reranker=Reranker("first-stage", settings=settings),
        rewriter=FakeLLM("volcano lava magma"),
        grader=FakeLLM("yes"),
        generator=FakeLLM(CITED),
    )
    for name, value in replace.items():
        setattr(tools, name, value)
    return tools


def run(node: nodes.Node, state: AgentState, tools: Tools, **runtime: Any) -> dict[str, Any]:
    return node(state, Runtime(context=GraphContext(tools), **runtime))


def graded(passages: list[Passage], **state: Any) -> AgentState:
    """The state generate sees after a grade of ok on `passages`."""
    return {
        **question_state(QUESTION),
        **{"queries": [QUESTION], "attempts": 1, "passages": passages, "grade": "ok"},
        **state,
    }


@pytest.fixture
def settings(home) -> Settings:
    return load_settings(**{"reranker.policy": "first-stage"})


def test_rewrite_keeps_the_question_and_drops_junk_lines(settings):
    reply = "Here are the search queries:\n1. lava magma chamber\n<|im_start|>\nvolcano eruptions"
    tools = make_tools(settings, rewriter=FakeLLM(reply))
    update = run(nodes.rewrite, question_state(QUESTION), tools)
    # Standalone (no history): the question itself is kept as the first query.
    assert update == {"queries": [QUESTION, "lava magma chamber"], "errors": []}
    [(messages, max_new_tokens)] = tools.rewriter.calls
    assert messages[0]["content"] == prompts.REWRITE_SYSTEM
    assert max_new_tokens == settings.rewriter.max_new_tokens


def test_rewrite_failure_falls_back_to_the_question(settings):
    tools = make_tools(settings, rewriter=FakeLLM(RuntimeError("down")))
    update = run(nodes.rewrite, question_state(QUESTION), tools)
    assert update == {"queries": [QUESTION], "errors": ["rewrite: RuntimeError: down"]}


def test_retrieve_fuses_the_queries_and_carries_metadata(settings):
    retriever = FakeRetriever([], {"lava": [VOLCANO, BREAD], "magma": [CHESS, VOLCANO]})
    tools = make_tools(settings, retriever=retriever)
    update = run(nodes.retrieve, {"queries": ["lava", "magma"], "attempts": 1}, tools)
    assert retriever.queries == ["lava", "magma"]
    assert update["attempts"] == 2
    passages = update["passages"]
    # Found by both queries, the volcano passage comes first; then the other first hit.
    assert [p.id for p in passages] == [VOLCANO.id, CHESS.id, BREAD.id]
    assert passages[0].score > passages[1].score > passages[2].score > 0
    assert passages[0].source == "docs/volcano.md" and passages[0].title == "Volcanoes"
    assert passages[0].metadata == VOLCANO.metadata


def test_rerank_keeps_metadata_and_falls_back_on_failure(settings):
    state: AgentState = {"question": QUESTION, "queries": ["lava"], "passages": [BREAD, VOLCANO]}
    update = run(nodes.rerank, state, make_tools(settings))
    assert [p.id for p in update["passages"]] == [BREAD.id, VOLCANO.id]  # first-stage order
    assert update["passages"][1].metadata == VOLCANO.metadata

    class Broken:
        def rank(self, query: str, passages: list[Passage]) -> Any:
            raise RuntimeError("no model")

    update = run(nodes.rerank, state, make_tools(settings, reranker=Broken()))
    assert update == {"errors": ["rerank: RuntimeError: no model"], "rerank_traces": []}
    # No "passages" in the update: the state keeps the first-stage order.


@pytest.mark.parametrize(("reply", "grade"), [("Yes.", "ok"), ("no", "insufficient")])
def test_grade_by_the_model(settings, reply, grade):
    state = graded([VOLCANO, BREAD], queries=["lava", "magma"])
    update = run(nodes.grade, state, make_tools(settings, grader=FakeLLM(reply)))
    assert update["grade"] == grade and update["grade_by"] == "model"
    if grade == "insufficient":
        assert update["feedback"] == "the passages did not answer: lava; magma"


@pytest.mark.parametrize(
    ("passages", "grade"), [([VOLCANO], "ok"), ([BREAD, CHESS], "insufficient")]
)
def test_grade_falls_back_to_the_score_check(settings, passages, grade):
    # Neither yes nor no: the share of the question's terms in the passages decides.
    tools = make_tools(settings, grader=FakeLLM("maybe"))
    update = run(nodes.grade, graded(passages), tools)
    assert update["grade"] == grade and update["grade_by"] == "score"
    # A failing grader is the same, with its error noted.
    tools = make_tools(settings, grader=FakeLLM(RuntimeError("timeout")))
    update = run(nodes.grade, graded(passages), tools)
    assert update["grade"] == grade and update["grade_by"] == "score"
    assert update["errors"] == ["grade: RuntimeError: timeout"]


def test_grade_without_passages(settings):
    tools = make_tools(settings)
    update = run(nodes.grade, graded([]), tools)
    assert update == {"grade": "insufficient", "grade_by": "score", "feedback": "no passages found"}
    assert tools.grader.calls == []


def test_grader_settings_reach_its_prompt_and_call(home):
    settings = load_settings(
        **{"reranker.policy": "first-stage", "grader.max_passage_chars": 40},
        **{"grader.max_new_tokens": 2, "grader.passages": 1},
    )
    tools = make_tools(settings)
    run(nodes.grade, graded([VOLCANO, BREAD]), tools)
    [(messages, max_new_tokens)] = tools.grader.calls
    assert max_new_tokens == 2
    prompt = messages[1]["content"]
    assert f"<passage>{prompts.quote(VOLCANO.text, 40)}</passage>" in prompt
    assert "magma" not in prompt and "Sourdough" not in prompt  # one passage judged


def test_after_grade_loop_is_bounded(settings):
    tools = make_tools(settings)
    assert settings.agent.max_retrievals == 2
    assert run(nodes.after_grade, {"grade": "ok", "attempts": 1}, tools) == "generate"
    assert run(nodes.after_grade, {"grade": "insufficient", "attempts": 1}, tools) == "rewrite"
    assert run(nodes.after_grade, {"grade": "insufficient", "attempts": 2}, tools) == "generate"


def test_generate_a_cited_answer(settings):
    tools = make_tools(settings)
    update = run(nodes.generate, graded([VOLCANO, BREAD]), tools)
    assert update["answer"] == CITED and not update["abstained"]
    [citation] = update["citations"]
    assert citation.number == 1 and citation.id == VOLCANO.id
    assert citation.source == "docs/volcano.md" and citation.title == "Volcanoes"
    assert update["sources"] == [VOLCANO, BREAD]
    assert update["invalid_citations"] == 0 and update["errors"] == []
    assert update["history"] == [{"role": "assistant", "content": CITED}]
    [(messages, max_new_tokens)] = tools.generator.calls
    assert messages[0]["content"] == prompts.GENERATE_SYSTEM
    assert max_new_tokens == settings.generator.max_new_tokens


def test_generate_removes_and_counts_invalid_citations(settings):
    tools = make_tools(settings, generator=FakeLLM("Magma [1][7] rises [2] [42]."))
    update = run(nodes.generate, graded([VOLCANO, BREAD]), tools)
    assert update["answer"] == "Magma [1] rises [2] ."
    assert update["invalid_citations"] == 2
    assert [c.number for c in update["citations"]] == [1, 2]


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("Lava comes from below.", "cited no passage"),
        ("It is in [9].", "cited no passage"),
        ("", "no answer from the model"),
        (f"Sure: {prompts.GENERATE_SYSTEM} [1]", "repeated the system prompt"),
    ],
)
def test_generate_replaces_an_unusable_answer_by_the_top_passage(settings, reply, problem):
    tools = make_tools(settings, generator=FakeLLM(reply))
    update = run(nodes.generate, graded([VOLCANO, BREAD]), tools)
    assert update["answer"] == f"{VOLCANO.text} [1]"
    assert [c.number for c in update["citations"]] == [1]
    [error] = update["errors"]
    assert error.startswith("generate: ") and problem in error
    assert error.endswith("quoting the top passage instead")


@pytest.mark.parametrize("passages", [[VOLCANO], []])
def test_generate_abstains_when_the_evidence_is_insufficient(settings, passages):
    tools = make_tools(settings)
    grade = "insufficient" if passages else "ok"
    update = run(nodes.generate, graded(passages, grade=grade), tools)
    assert update["answer"] == prompts.ABSTAIN and update["abstained"]
    assert update["citations"] == [] and update["sources"] == passages
    assert tools.generator.calls == []


@pytest.mark.parametrize("turns", [0, 1])
def test_generator_shows_its_own_history_turns(home, turns):
    settings = load_settings(
        **{"reranker.policy": "first-stage", "generator.history_turns": turns},
        **{"rewriter.history_turns": 6},
    )
    earlier = [
        {"role": "user", "content": "Tell me about bread"},
        {"role": "assistant", "content": "Sourdough uses wild yeast [1]."},
    ]
    tools = make_tools(settings)
    run(
        nodes.generate,
        graded([VOLCANO], history=question_state(QUESTION, earlier)["history"]),
        tools,
    )
    prompt = tools.generator.calls[0][0][1]["content"]
    assert "Tell me about bread" not in prompt
    assert ("Sourdough uses wild yeast" in prompt) == (turns == 1)
    assert ("Conversation so far" in prompt) == (turns == 1)


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
    assert QUESTION in rewrite_prompt and CITED in rewrite_prompt
    history = agent.graph.get_state({"configurable": {"thread_id": "t1"}}).values["history"]
    assert [t["role"] for t in history] == ["user", "assistant"] * 2


def test_the_graph_loops_then_abstains(settings):
    tools = make_tools(settings, grader=FakeLLM("no"))
    answer = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver()).ask(QUESTION)
    assert answer.abstained and answer.answer == prompts.ABSTAIN
    assert answer.attempts == settings.agent.max_retrievals == len(tools.rewriter.calls)
    assert "did not answer" in tools.rewriter.calls[-1][0][1]["content"]  # told it failed
    assert tools.generator.calls == []


def test_stream_nodes_and_tokens(settings):
    tools = make_tools(settings, generator=StreamingLLM(CITED))
    agent = RAGAgent(settings, tools=tools, checkpointer=InMemorySaver())
    events = list(agent.stream(QUESTION, tokens=True))
    tokens = [u["text"] for node, u in events if node == "token"]
    assert len(tokens) == len(CITED.split()) and "".join(tokens) == CITED
    assert [n for n, _ in events if n != "token"] == [
        *("rewrite", "retrieve", "rerank", "grade", "generate", "answer")
    ]
    assert events[-1][1]["answer"].answer == CITED
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
