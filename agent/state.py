"""What flows through the graph: its state, the input that starts a question, the output a
caller reads, and the context (the tools) every node runs with."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

from rearag.agent.evidence import Encode
from rearag.core.config import Settings
from rearag.core.filters import Where
from rearag.core.types import AnswerMode, Citation, Passage
from rearag.tools.llm import LLMBackend, Message

if TYPE_CHECKING:
    from rearag.policies.reranker import Reranker
    from rearag.tools.retriever import Retriever


class AgentOutput(TypedDict, total=False):
    """What the graph returns: the fields of `Answer` (see `Answer.from_state`)."""

    question: str
    queries: list[str]
    attempts: int
    rerank_traces: list[dict[str, Any]]
    answer: str
    citations: list[Citation]
    sources: list[Passage]
    abstained: bool
    mode: AnswerMode
    invalid_citations: int
    errors: list[str]  # nodes append through nodes.accounted
    timings: dict[str, float]  # seconds per node, summed over loops
    usage: dict[str, int]  # prompt_tokens, completion_tokens: summed over the model calls


class AgentInput(AgentOutput, total=False):
    """What starts a question (build it with `question_state`): the output fields too, emptied,
    since a thread's checkpoint still holds the previous question's."""

    # Kept across turns of a conversation by the checkpointer.
    history: Annotated[list[Message], operator.add]
    feedback: str
    passages: list[Passage]


class AgentState(AgentInput, total=False):
    grade: Literal["ok", "insufficient"]
    grade_by: Literal["model", "score"]
    evidence: float  # the best passage sentence's similarity to the question
    answer_score: float  # the best passage sentence's score as an answer (evidence.Sentence)


def question_state(question: str, history: Sequence[Message] = ()) -> AgentInput:
    """The input that starts answering `question`. `history`: earlier turns a stateless caller
    resends; a thread keeps its own, and this question's turn is added to it."""
    return {
        "question": question,
        "history": [*history, {"role": "user", "content": question}],
        "queries": [],
        "feedback": "",
        "attempts": 0,
        "passages": [],
        "rerank_traces": [],
        "answer": "",
        "citations": [],
        "sources": [],
        "abstained": False,
        "mode": "generated",
        "invalid_citations": 0,
        "errors": [],
        "timings": {},
        "usage": {},
    }


@dataclass
class AgentTools:
    """Every tool the nodes call, each configured from its own settings section."""

    settings: Settings
    retriever: Retriever
    reranker: Reranker
    rewriter: LLMBackend
    grader: LLMBackend
    generator: LLMBackend
    # Texts -> unit vectors: the collection's embedder, for the evidence and topic checks.
    encode: Encode


@dataclass(frozen=True)
class GenerationOptions:
    """One request's settings for the generator's draft (an API caller's `max_tokens`,
    `temperature`, `stop`); unset ones come from `[generator]`."""

    max_new_tokens: int | None = None
    temperature: float = 0.0
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphContext:
    """What one run of the graph gets besides its state (LangGraph's `context=`)."""

    tools: AgentTools
    # Send the draft's pieces to the stream's "custom" mode as {"token": piece}, and its
    # checked sentences, as they are verified, as {"content": text}.
    stream_tokens: bool = False
    generation: GenerationOptions = GenerationOptions()
    # Search only chunks whose metadata this keeps: nothing else reaches the reranker, the
    # grade or the answer.
    where: Where | None = None
