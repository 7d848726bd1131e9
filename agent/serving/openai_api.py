"""The OpenAI shapes of `rearag serve`: chat completions (request, response, stream chunks)
and models (errors are in errors.py).

A chat request's fields either take effect or are answered: `max_tokens` /
`max_completion_tokens`, `temperature` and `stop` go to the generator; a field that would
change what the client gets back and that rearag cannot honour (`n` > 1, `tools`, images, …) is
a 400 naming it; any other field (`top_p`, `seed`, …) and the client's own system prompt
(rearag answers with its own) are accepted, without effect, and named in the
`X-Rearag-Ignored` header.
Answers carry rearag's extra data (citations, sources, reasoning) in a `rearag` field, which
OpenAI clients keep as an extra attribute.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from rearag.agent.answer_text import message_text
from rearag.agent.serving.request import ApiRequest, Count
from rearag.agent.state import GenerationOptions
from rearag.core import thread_ids
from rearag.core.errors import UnsupportedField
from rearag.core.filters import WHERE_HELP
from rearag.core.types import Answer, Usage


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    # tool and function are accepted here to be refused with a message naming them.
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


# Fields that would change the reply in a way rearag cannot honour, and what to do instead.
REFUSED = {
    "tools": "rearag answers from its documents and calls no tools: leave out tools",
    "tool_choice": "rearag calls no tools: leave out tool_choice",
    "functions": "rearag calls no functions: leave out functions",
    "function_call": "rearag calls no functions: leave out function_call",
    "audio": "rearag answers in text only: leave out audio",
    "prediction": "predicted outputs are not supported: leave out prediction",
    "web_search_options": "rearag searches its own documents: leave out web_search_options",
    "top_logprobs": "token log probabilities are not available: leave out top_logprobs",
}


FIELD_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class ChatRequest(ApiRequest):
    model_config = ConfigDict(extra="allow")
    model: str = Field(description="a served collection (GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(
        None,
        max_length=thread_ids.MAX_CHARS,
        description="thread id when no X-Thread-Id header is sent",
    )
    max_tokens: Count | None = Field(None, ge=1, description="cap on the generator's draft")
    max_completion_tokens: Count | None = Field(None, ge=1, description="as max_tokens")
    temperature: float | None = Field(None, ge=0, le=2, description="the generator's")
    stop: str | list[str] | None = Field(None, description="up to 4 stop strings")
    n: Count = Field(1, ge=1, description="only 1: one answer per question")
    where: dict[str, Any] | None = Field(
        None, description=f"rearag's own field: answer from {WHERE_HELP.removeprefix('only ')}"
    )
    logprobs: bool | None = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None

    def check_supported(self) -> None:
        """Raise UnsupportedField for the first field rearag cannot honour."""
        if self.n != 1:
            raise UnsupportedField(
                "n", f"n={self.n}: rearag gives one answer per question; send n=1"
            )
        given = self.model_extra or {}
        for name, why in REFUSED.items():
            if given.get(name) not in (None, [], "none"):
                raise UnsupportedField(name, why)
        if self.logprobs:
            raise UnsupportedField("logprobs", "token log probabilities are not available")
        if self.response_format and self.response_format.get("type") != "text":
            raise UnsupportedField(
                "response_format", "answers are text with citations: use response_format text"
            )
        if self.modalities and set(self.modalities) != {"text"}:
            raise UnsupportedField("modalities", "rearag answers in text only")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise UnsupportedField("stop", "at most 4 stop strings")
        for i, m in enumerate(self.messages):
            if m.role in ("tool", "function"):
                raise UnsupportedField(
                    f"messages[{i}].role", f"{m.role} messages need tools, which rearag has not"
                )
            if (m.model_extra or {}).get("tool_calls"):
                raise UnsupportedField(f"messages[{i}].tool_calls", "rearag calls no tools")
            for j, part in enumerate(m.content if isinstance(m.content, list) else []):
                if part.type != "text":
                    raise UnsupportedField(
                        f"messages[{i}].content[{j}].type",
                        f"{part.type!r} content is not supported: send text parts only",
                    )
        if not any(m.role == "user" for m in self.messages):
            raise UnsupportedField(
                "messages", "no user message: send the question as a user message"
            )

    def ignored(self) -> list[str]:
        """The fields given that take no effect, for the X-Rearag-Ignored header (a name that
        is no plain identifier is not echoed into a header: it is counted)."""
        names = header_names([name for name in self.model_extra or {} if name not in REFUSED])
        names += [
            f"messages[{i}] ({m.role})"
            for i, m in enumerate(self.messages)
            if m.role in ("system", "developer")
        ]
        return names

    def generation(self) -> GenerationOptions:
        """The generator's settings this request asks for."""
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return GenerationOptions(
            max_new_tokens=self.max_completion_tokens or self.max_tokens,
            temperature=self.temperature or 0.0,
            stop=tuple(stop),
        )

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def question(self) -> str:
        """The latest user message: what the agent answers."""
        users = [m for m in self.messages if m.role == "user"]
        return users[-1].text if users else ""

    def history(self) -> list[dict[str, str]]:
        """Earlier user and assistant turns, for clients that resend the conversation."""
        last = max(i for i, m in enumerate(self.messages) if m.role == "user")
        return [
            {"role": m.role, "content": m.text}
            for m in self.messages[:last]
            if m.role in ("user", "assistant") and m.text
        ]


def header_names(given: list[str]) -> list[str]:
    """Request field names as the X-Rearag-Ignored header may show them: a name that is no
    plain identifier is not echoed into a header (it could not be sent), it is counted."""
    names = [name for name in given if FIELD_NAME.fullmatch(name)][:20]
    if len(names) < len(given):
        names.append(f"{len(given) - len(names)} other field(s)")
    return names


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="the answer, then its cited sources (message_text)")


class Choice(BaseModel):
    index: int = 0
    finish_reason: Literal["stop"] = "stop"
    message: AssistantMessage


class ChatCompletion(BaseModel):
    """A whole answer. `rearag` carries the answer's data, which OpenAI clients keep as an
    extra attribute."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    rearag: Answer


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(model: str, answer: Answer) -> ChatCompletion:
    return ChatCompletion(
        id=completion_id(),
        created=int(time.time()),
        model=model,
        choices=[Choice(message=AssistantMessage(content=message_text(answer)))],
        usage=answer.usage,
        rearag=answer,
    )


def answer_headers(answer: Answer) -> dict[str, str]:
    """The answer's mode and citations as response headers, where clients that keep headers
    but drop extra body fields find them (langchain-openai's `include_response_headers=True`
    puts them in `response_metadata["headers"]`). ASCII JSON; passage texts stay in the body."""
    cited = [
        {"number": c.number, "id": c.id, "label": c.label[:200], "source": c.source[:500]}
        for c in answer.citations
    ]
    return {"X-Rearag-Mode": answer.mode, "X-Rearag-Citations": json.dumps(cited)}


class ChunkChoice(BaseModel):
    index: int = 0
    delta: dict[str, str] = Field(description='{"role", "content"}, {"content"} or {}')
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """One event of a streamed answer; the last one, when asked for, carries only `usage`."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    rearag: dict[str, Any] | None = Field(
        None, description="progress: a step, a draft token, or last the whole answer"
    )

    @model_serializer(mode="wrap")
    def _absent_not_null(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI chunks leave out what they do not carry.
        data = handler(self)
        for key in ("usage", "rearag"):
            if data[key] is None:
                del data[key]
        return data


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rearag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
