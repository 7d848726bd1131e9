"""The HTTP bodies of `rearag serve`: OpenAI Chat Completions shapes, plus search.

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
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rearag.agent.answer_text import message_text
from rearag.agent.state import GenerationOptions
from rearag.core.config import SearchMode
from rearag.core.types import Answer, Passage

ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    500: "server_error",
    502: "server_error",
    504: "timeout_error",
}


def error_body(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape, which its clients turn into typed exceptions."""
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where in a request body a lone surrogate sits, if anywhere. JSON can carry one
    ("\\ud800"), no UTF-8 text can hold one, and a text fails only when an answer quoting it
    is encoded, so bodies are checked whole, up front."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            return f"{path or 'body'} (character {exc.start})"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = lone_surrogate(key, path) or lone_surrogate(item, f"{path}.{key}".lstrip("."))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := lone_surrogate(item, f"{path}[{i}]"):
                return found
    return None


class ApiRequest(BaseModel):
    """A request body whose every text is valid Unicode."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if where := lone_surrogate(data):
            raise ValueError(f"{where} is not valid Unicode text (a lone surrogate)")
        return data


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str


class ErrorResponse(BaseModel):
    """Every error's body (OpenAI's shape)."""

    error: ErrorDetail


class Unsupported(Exception):
    """A request field rearag cannot honour: `param` names it as OpenAI's errors do."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param = param


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
        None, max_length=200, description="thread id when no X-Thread-Id header is sent"
    )
    max_tokens: int | None = Field(None, ge=1, description="cap on the generator's draft")
    max_completion_tokens: int | None = Field(None, ge=1, description="as max_tokens")
    temperature: float | None = Field(None, ge=0, le=2, description="the generator's")
    stop: str | list[str] | None = Field(None, description="up to 4 stop strings")
    n: int = Field(1, ge=1, description="only 1: one answer per question")
    logprobs: bool | None = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None

    def check_supported(self) -> None:
        """Raise Unsupported for the first field rearag cannot honour."""
        if self.n != 1:
            raise Unsupported("n", f"n={self.n}: rearag gives one answer per question; send n=1")
        given = self.model_extra or {}
        for name, why in REFUSED.items():
            if given.get(name) not in (None, [], "none"):
                raise Unsupported(name, why)
        if self.logprobs:
            raise Unsupported("logprobs", "token log probabilities are not available")
        if self.response_format and self.response_format.get("type") != "text":
            raise Unsupported(
                "response_format", "answers are text with citations: use response_format text"
            )
        if self.modalities and set(self.modalities) != {"text"}:
            raise Unsupported("modalities", "rearag answers in text only")
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise Unsupported("stop", "at most 4 stop strings")
        for i, m in enumerate(self.messages):
            if m.role in ("tool", "function"):
                raise Unsupported(
                    f"messages[{i}].role", f"{m.role} messages need tools, which rearag has not"
                )
            if (m.model_extra or {}).get("tool_calls"):
                raise Unsupported(f"messages[{i}].tool_calls", "rearag calls no tools")
            for j, part in enumerate(m.content if isinstance(m.content, list) else []):
                if part.type != "text":
                    raise Unsupported(
                        f"messages[{i}].content[{j}].type",
                        f"{part.type!r} content is not supported: send text parts only",
                    )
        if not any(m.role == "user" for m in self.messages):
            raise Unsupported("messages", "no user message: send the question as a user message")

    def ignored(self) -> list[str]:
        """The fields given that take no effect, for the X-Rearag-Ignored header (a name that
        is no plain identifier is not echoed into a header: it is counted)."""
        given = [name for name in self.model_extra or {} if name not in REFUSED]
        names = [name for name in given if FIELD_NAME.fullmatch(name)][:20]
        if len(names) < len(given):
            names.append(f"{len(given) - len(names)} other field(s)")
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


P = TypeVar("P", bound=Passage)


def relative_source(passage: P) -> P:
    """The passage with its source as ingested from the folder named (`path`), not the
    server's absolute path; the file name alone for chunks ingested before paths were kept."""
    meta = dict(passage.metadata)
    if meta.get("source"):
        meta["source"] = meta.get("path") or Path(meta["source"]).name
    return passage.model_copy(update={"metadata": meta})


def relative_sources(answer: Answer) -> Answer:
    return answer.model_copy(
        update={
            "citations": [relative_source(c) for c in answer.citations],
            "sources": [relative_source(p) for p in answer.sources],
        }
    )


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def answer_headers(answer: Answer) -> dict[str, str]:
    """The answer's mode and citations as response headers, where clients that keep headers
    but drop extra body fields find them (langchain-openai's `include_response_headers=True`
    puts them in `response_metadata["headers"]`). ASCII JSON; passage texts stay in the body."""
    cited = [
        {"number": c.number, "id": c.id, "label": c.label[:200], "source": c.source[:500]}
        for c in answer.citations
    ]
    return {"X-Rearag-Mode": answer.mode, "X-Rearag-Citations": json.dumps(cited)}


def usage(answer: Answer) -> dict[str, int]:
    return answer.usage.model_dump()


def completion(model: str, answer: Answer) -> dict[str, Any]:
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": message_text(answer)},
            }
        ],
        "usage": usage(answer),
        "rearag": answer.model_dump(),
    }


def chunk(
    cid: str,
    model: str,
    delta: dict[str, Any],
    finish: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if extra is not None:
        body["rearag"] = extra
    return body


def usage_chunk(cid: str, model: str, answer: Answer) -> dict[str, Any]:
    """The last chunk when the client asked for `stream_options.include_usage`."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": usage(answer),
    }


class SearchRequest(ApiRequest):
    query: str = Field(min_length=1, max_length=10_000)
    model: str | None = Field(None, description="collection; default: the first served")
    k: int | None = Field(None, ge=1, le=100)
    mode: SearchMode | None = None


class SearchResponse(BaseModel):
    model: str
    results: list[Passage]


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rearag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
