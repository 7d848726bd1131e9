"""The one LLM interface every node uses, whatever runs the model.

`generate(messages_batch, max_new_tokens, temperature, stop) -> list[Completion]`: one chat
completion per conversation, in order. A backend never raises for one failed request: the
Completion carries `error`, so a caller can fall back for that item and count it.

Backends that can also implement `stream(messages, max_new_tokens, temperature, stop)`, an
iterator of text pieces for one conversation (the generate node streams answers with it).
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

Message = dict[str, str]


class Completion(BaseModel):
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = ""
    cost_usd: float = 0.0
    error: str | None = None


class LLMBackend(Protocol):
    model: str

    def generate(
        self,
        messages_batch: list[list[Message]],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> list[Completion]: ...
