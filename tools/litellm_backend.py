"""API models through litellm: OpenAI, Anthropic, Gemini, … and local OpenAI-compatible servers
(vLLM, Ollama, llama.cpp) via `api_base`.

Requests run in parallel up to `concurrency`; rate limits, timeouts, connection errors and 5xx
are retried with exponential backoff, then the fallback model is tried; a request that still
fails returns a Completion with `error` set instead of raising.
"""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rearag.core.text import error_text
from rearag.tools.llm import Completion, Message

# Import must never reach the network for the model price list.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

RETRYABLE = (
    litellm.exceptions.RateLimitError,
    litellm.exceptions.Timeout,
    litellm.exceptions.APIConnectionError,
    litellm.exceptions.InternalServerError,
    litellm.exceptions.ServiceUnavailableError,
    litellm.exceptions.BadGatewayError,
)


class LiteLLMBackend:
    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        concurrency: int = 4,
        fallback_model: str | None = None,
        backoff_s: float = 1.0,
    ) -> None:
        self.model = model
        self.api_base = api_base
        # OpenAI-compatible local servers usually ignore the key, but the client insists on one.
        self.api_key = api_key or ("unused" if api_base else None)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.fallback_model = fallback_model
        self.backoff_s = backoff_s

    @property
    def batch_size(self) -> int:
        """Prompts worth handing to one generate call: they run concurrently (`Batched`)."""
        return self.concurrency

    def generate(
        self,
        messages_batch: list[list[Message]],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
        **extra: Any,
    ) -> list[Completion]:
        def one(messages: list[Message]) -> Completion:
            return self._complete(messages, max_new_tokens, temperature, stop, extra)

        if len(messages_batch) <= 1:
            return [one(m) for m in messages_batch]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, messages_batch))

    def stream(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float = 0.0,
        stop: list[str] | None = None,
    ) -> Iterator[str | Completion]:
        """Text pieces as the server sends them, then the Completion (with the usage the server
        reports at the end of the stream). A request that fails before its first piece falls
        back to `generate` (with its retries); a failure mid-stream ends the text where it
        broke, with the error."""
        try:
            response = litellm.completion(
                **self._request(self.model, messages, max_new_tokens, temperature, stop),
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = iter(response)
            first = next(chunks, None)
        except Exception:
            [c] = self.generate([messages], max_new_tokens, temperature, stop)
            if c.text:
                yield c.text
            yield c
            return
        pieces: list[str] = []
        usage, finish, error = None, "", None
        try:
            for chunk in itertools.chain([first] if first else [], chunks):
                usage = getattr(chunk, "usage", None) or usage
                if not chunk.choices:
                    continue
                finish = chunk.choices[0].finish_reason or finish
                piece = chunk.choices[0].delta.content
                if piece:
                    pieces.append(piece)
                    yield piece
        except Exception as exc:
            error = f"stream broke: {error_text(exc)}"
        yield Completion(
            text="".join(pieces),
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=str(finish),
            error=error,
        )

    def _request(
        self,
        model: str,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> dict[str, Any]:
        return {
            "model": model,
            "messages": messages,
            "max_tokens": max_new_tokens,
            "temperature": temperature,
            "stop": stop or None,
            "api_base": self.api_base,
            "api_key": self.api_key,
            "timeout": self.timeout_s,
            "num_retries": 0,
        }

    def _complete(
        self,
        messages: list[Message],
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
        extra: dict[str, Any],
    ) -> Completion:
        errors: list[str] = []
        for model in filter(None, (self.model, self.fallback_model)):
            for attempt in range(self.max_retries + 1):
                try:
                    response = litellm.completion(
                        **self._request(model, messages, max_new_tokens, temperature, stop),
                        **extra,
                    )
                    return _to_completion(response)
                except RETRYABLE as exc:
                    errors.append(f"{model}: {exc.__class__.__name__}")
                    if attempt < self.max_retries:
                        time.sleep(self.backoff_s * 2**attempt * (1 + random.random() / 4))
                except Exception as exc:  # auth, bad request, unknown model: retrying won't help
                    errors.append(f"{model}: {error_text(exc)}")
                    break
        return Completion(error="; ".join(errors[-3:]))


def _to_completion(response: Any) -> Completion:
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    try:
        cost = float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:  # unknown price (local servers, new models): cost unknown, not an error
        cost = 0.0
    text = choice.message.content or ""
    # litellm moves a leading <think>…</think> into reasoning_content; put it back so callers
    # see what the model wrote (the reranker's parser reads the reasoning from the tags).
    reasoning = getattr(choice.message, "reasoning_content", None)
    if reasoning and "<think>" not in text:
        text = f"<think>{reasoning}</think>{text}"
    return Completion(
        text=text,
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        finish_reason=str(choice.finish_reason or ""),
        cost_usd=cost,
    )
