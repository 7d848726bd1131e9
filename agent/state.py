"""What flows through the graph, and what a caller gets back."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel


class Passage(BaseModel):
    id: str
    text: str
    source: str = ""
    title: str = ""
    score: float = 0.0


class Citation(BaseModel):
    number: int  # as written in the answer: [1] is the first passage shown to the generator
    passage_id: str
    source: str
    title: str
    text: str


class AgentState(TypedDict, total=False):
    # Kept across turns of a conversation by the checkpointer.
    history: Annotated[list[dict[str, str]], operator.add]
    # Reset at the start of every question.
    question: str
    queries: list[str]
    feedback: str
    attempts: int
    passages: list[Passage]
    rerank_traces: list[dict[str, Any]]
    grade: Literal["ok", "insufficient"]
    grade_by: Literal["model", "score"]
    answer: str
    citations: list[Citation]
    sources: list[Passage]
    abstained: bool
    invalid_citations: int
    errors: list[str]  # nodes append through nodes.timed
    timings: dict[str, float]  # seconds per node, summed over loops


class Answer(BaseModel):
    question: str
    answer: str
    citations: list[Citation]
    sources: list[Passage]  # every passage shown to the generator, cited or not
    abstained: bool
    queries: list[str]
    attempts: int
    invalid_citations: int
    reasoning: list[dict[str, Any]]  # the reranker's window traces
    errors: list[str]  # "node: what failed" for every node that fell back
    timings: dict[str, float]  # seconds per node, summed over loops
    thread_id: str | None = None
