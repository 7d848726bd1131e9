"""A reranker policy: how a window of passages becomes a prompt, how the model is run on it,
and how its output becomes a permutation. Each policy lives in its own small module."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from rearag.core.sanitize import clean_passage
from rearag.policies.parser import ParsedRanking, parse_ranking
from rearag.policies.prompts import Message, listwise_messages, numeric_labels

PolicyKind = Literal["generate", "logits", "likelihood", "none"]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    # generate: decode text and parse it; logits: one forward pass, order by the logits of the
    # identifiers as first token; likelihood: score each passage alone by the model's
    # likelihood of the query given it (one forward pass per passage); none: keep the
    # first-stage order (no model).
    kind: PolicyKind
    # The listwise prompt's system turn and final instruction ({n}, {query} are filled in).
    system: str = ""
    final_instruction: str = ""
    labels: Callable[[int], list[str]] = numeric_labels
    max_new_tokens: int = 0
    stop: tuple[str, ...] = ()
    expect_tags: bool = False  # the ranking must be inside <answer> (or after </think>)
    think: bool = True  # with expect_tags: a <think> block comes before the <answer>
    assistant_prefix: str = ""
    max_window: int | None = None

    def passage_messages(self, passage: str, max_chars: int) -> list[Message]:
        """A likelihood policy's prompt for one passage; the query is scored as the reply."""
        text = self.final_instruction.format(passage=clean_passage(passage, max_chars))
        return [{"role": "user", "content": text}]

    def likelihood_reply(self, query: str) -> str:
        """The query as a likelihood policy reads it: the model's reply, cut and neutralised
        like a passage (scoring and training both use this)."""
        return clean_passage(query, 1000)

    def messages(self, query: str, passages: list[str], max_chars: int) -> list[Message]:
        """The chat prompt for one window: the one builder for inference and training."""
        if self.kind in ("none", "likelihood"):
            raise ValueError(f"policy {self.name} uses no prompt")
        return listwise_messages(
            system=self.system,
            query=query,
            passages=passages,
            labels=self.labels(len(passages)),
            final_instruction=self.final_instruction,
            max_chars=max_chars,
        )

    def parse(self, text: str, n: int) -> ParsedRanking:
        return parse_ranking(text, n, expect_tags=self.expect_tags)
