"""The HTTP bodies of `rearag serve`: OpenAI Chat Completions shapes, plus search and rerank.

Requests ignore fields they do not use (OpenAI clients send temperature, top_p, …); answers
carry rearag's extra data (citations, sources, reasoning) in a `rearag` field, which OpenAI
clients keep as an extra attribute.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rearag.core.config import SearchMode
from rearag.core.types import Answer, Passage
from rearag.policies.reranker import RankedResults

ERROR_TYPES = {
    401: "authentication_error",
    404: "not_found_error",
    500: "server_error",
    502: "server_error",
    504: "timeout_error",
}


def error_body(status: int, message: str, code: str) -> dict[str, Any]:
    """OpenAI's error shape, which its clients turn into typed exceptions."""
    kind = ERROR_TYPES.get(status, "invalid_request_error")
    return {"error": {"message": message, "type": kind, "code": code}}


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str = Field(description="a served collection (GET /v1/models)")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    user: str | None = Field(
        None, max_length=200, description="thread id when no X-Thread-Id header is sent"
    )

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


EXTRACTED = "Extracted from the sources:"


def message_text(answer: Answer) -> str:
    """The answer as a chat message: the text (said to be quoted when it was extracted), then
    the passages it cites."""
    text = f"{EXTRACTED}\n{answer.answer}" if answer.mode == "extractive" else answer.answer
    if not answer.citations:
        return text
    lines = [f"[{c.number}] {c.label} ({c.source})" for c in answer.citations]
    return text + "\n\nSources:\n" + "\n".join(lines)


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


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
        # The graph calls several models (or none); per-request token counts are not tracked.
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
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


class SearchRequest(BaseModel):
    query: str = Field(min_length=1, max_length=10_000)
    model: str | None = Field(None, description="collection; default: the first served")
    k: int | None = Field(None, ge=1, le=100)
    mode: SearchMode | None = None


class SearchResponse(BaseModel):
    model: str
    results: list[Passage]


class RerankRequest(BaseModel):
    query: str = Field(min_length=1, max_length=10_000)
    documents: list[str] = Field(min_length=1)
    doc_ids: list[str] | None = None
    top_k: int | None = Field(None, ge=1)


RerankResponse = RankedResults


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rearag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
