"""The data that crosses boundaries: a passage (search hit, reranker input, answer source),
a citation of one, and the answer the agent returns.

A passage's `metadata` is what ingestion stored with the chunk (`source`, `title`, `doc_id`,
offsets); it travels with the passage through search, reranking and the answer, so no caller
re-joins results by id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, computed_field

# How an answer was produced: written by the generator model and checked against the passages,
# extracted from the passages (the best sentences, cited) when the model's draft was unusable or
# the model is not trusted to write, or withheld because the evidence was too weak.
AnswerMode = Literal["generated", "extractive", "abstained"]


class Passage(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any] = {}
    score: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def source(self) -> str:
        """The file the passage comes from ("" when unknown)."""
        return str(self.metadata.get("source") or "")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def title(self) -> str:
        return str(self.metadata.get("title") or "")

    @property
    def label(self) -> str:
        """What a person reads as the passage's name: its title, else its file name."""
        return self.title or Path(self.source).name

    @property
    def location(self) -> str:
        """Where a person finds the passage, when titles alone do not tell sources apart
        (four files may share "Introduction"): its path as ingested from the folder named
        (`docs/guide/intro.md`; the stored source for chunks from before paths were kept), the
        record of a .jsonl corpus (`corpus.jsonl#d42`), and the section or pages if known."""
        meta = self.metadata
        where = str(meta.get("path") or self.source)
        doc_id = str(meta.get("doc_id") or "")
        if doc_id and doc_id != self.source:
            where = f"{where}#{doc_id}" if where else doc_id
        if meta.get("section"):
            where += f", § {meta['section']}"
        if self.pages:
            where += f", {self.pages}"
        return where

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pages(self) -> str:
        """The PDF pages the passage is on, as a reader cites them ("p. 12", "pp. 3-4"; ""
        when not paged): with the source in the CLI, the chat page and the Sources text."""
        first, last = self.metadata.get("page"), self.metadata.get("page_end")
        if first and last and last != first:
            return f"pp. {first}-{last}"
        return f"p. {first}" if first else ""


class Citation(Passage):
    """A passage the answer cites; `number` is as written in the answer: [1] is the first
    passage shown to the generator."""

    number: int


class Usage(BaseModel):
    """Tokens the models read and wrote for one answer, summed over every node that called a
    model (as the backends count them: the tokenizer for local models, the API's usage)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class Answer(BaseModel):
    question: str
    answer: str
    citations: list[Citation]
    sources: list[Passage]  # every passage shown to the generator, cited or not
    abstained: bool
    mode: AnswerMode = "generated"
    queries: list[str]
    attempts: int
    invalid_citations: int
    reasoning: list[dict[str, Any]]  # the reranker's window traces
    errors: list[str]  # "node: what failed" for every node that fell back
    timings: dict[str, float]  # seconds per node, summed over loops
    usage: Usage = Usage()
    thread_id: str | None = None

    @classmethod
    def from_state(cls, state: Mapping[str, Any], thread_id: str | None = None) -> Answer:
        """The answer in the agent graph's final state (or its output): the fields of the same
        name, and `reasoning` from its `rerank_traces`."""
        fields = {name: state[name] for name in cls.model_fields if name in state}
        return cls(
            **{**fields, "reasoning": state.get("rerank_traces", []), "thread_id": thread_id}
        )
