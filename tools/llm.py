"""The one LLM interface every node uses, whatever runs the model.

`generate(messages_batch, max_new_tokens, temperature, stop) -> list[Completion]`: one chat
completion per conversation, in order. A backend never raises for one failed request: the
Completion carries `error`, so a caller can fall back for that item and count it.

Optional abilities are Protocols of their own, checked with `isinstance`: a backend that
streams (`Streaming`: pieces, then the Completion with its token counts), returns next-token
logits (`Logits`, for the FIRST policy), counts
prompt tokens against its context (`TokenCounting`), or batches prompts (`Batched`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from pydantic import BaseModel

Message = dict[str, str]


class Completion(BaseModel):
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    cost_usd: float = 0.0
    error: str | None = None


@runtime_checkable
class LLMBackend(Protocol):
    model: str

    def generate(
        self,
        messages_batch: list[list[Message]],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> list[Completion]: ...


@runtime_checkable
class Streaming(Protocol):
    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | Completion]:
        """Text pieces of one completion as they are produced, then one `Completion`: the whole
        text with its token counts, finish reason and error (a stream broken mid-way ends with
        the text it got and the error)."""
        ...


@runtime_checkable
class Logits(Protocol):
    def next_token_logits(
        self,
        messages_batch: list[list[Message]],
        assistant_prefix: str,
        candidates: list[list[str]],
    ) -> list[list[float]]:
        """Per prompt, the logit of each candidate's first token after `assistant_prefix`."""
        ...


@runtime_checkable
class Likelihood(Protocol):
    def answer_logprobs(
        self, messages_batch: list[list[Message]], answers: list[str]
    ) -> list[float]:
        """Per prompt, the mean log-probability of each token of `answers[i]` written as the
        assistant's reply to `messages_batch[i]`. One forward pass, no decoding."""
        ...


@runtime_checkable
class TokenCounting(Protocol):
    context_length: int

    def count_tokens(self, messages: list[Message]) -> int: ...


@runtime_checkable
class Batched(Protocol):
    # Prompts one generate call handles at once: a local model's batch, an API backend's
    # concurrent requests.
    batch_size: int
