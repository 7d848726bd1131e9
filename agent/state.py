"""What flows through the graph, and what a caller gets back."""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, TypedDict

from rearag.core.types import Citation, Passage


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
