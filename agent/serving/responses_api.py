"""OpenAI's Responses API shapes for `POST /v1/responses`: the request, read as a chat request
(one path for both), and the answer as a `response` whose output text carries its citations
as annotations, whole or as a stream of typed events.

Each `[n]` in the answer is one annotation at that place in the text: a `file_citation` whose
`file_id` is the cited chunk's id and `filename` its source (as the server shows sources), or
a `url_citation` when the source is a web address, both with rearag's `number`, `title` and
`pages` ("p. 12") beside OpenAI's fields (a `url_citation` also carries the chunk's
`file_id`). `index` (and `start_index`/`end_index`) count Unicode code points of
`output_text` (Python's and the `openai` SDK's string positions; JavaScript counts UTF-16
units, which differ past the first character outside the Basic Multilingual Plane).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rearag.agent.answer_text import message_text
from rearag.agent.serving.chat_stream import unsent
from rearag.agent.serving.errors import INTERNAL, api_error
from rearag.agent.serving.openai_api import REFUSED as CHAT_REFUSED
from rearag.agent.serving.openai_api import ChatMessage, ChatRequest, header_names
from rearag.agent.serving.request import ApiRequest, Count
from rearag.agent.serving.worker import Event
from rearag.core import thread_ids
from rearag.core.errors import UnsupportedField
from rearag.core.filters import WHERE_HELP
from rearag.core.types import Answer

log = logging.getLogger("rearag.serve")
# Fields that would change what the client gets back in a way rearag cannot honour.
REFUSED = {
    "previous_response_id": "rearag keeps conversations by thread: send the X-Thread-Id header "
    "(or `user`), or the earlier turns in `input`",
    "conversation": "rearag keeps conversations by thread: send the X-Thread-Id header",
    "background": "answers are given in the request: leave out background",
    "prompt": "stored prompts are not supported: send the question in input",
}
_MARKER = re.compile(r"\[(\d+)\]")


class InputPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str = ""


class InputItem(BaseModel):
    """A message of `input` (the Responses API's "easy" or full message shape)."""

    model_config = ConfigDict(extra="allow")
    type: str = "message"
    role: str = "user"
    content: str | list[InputPart] = ""


class ResponsesRequest(ApiRequest):
    model_config = ConfigDict(extra="allow")
    model: str = Field(description="a served collection (GET /v1/models)")
    input: str | list[InputItem] = Field(
        description="the question, or the conversation whose last user message is the question"
    )
    stream: bool = False
    user: str | None = Field(
        None,
        max_length=thread_ids.MAX_CHARS,
        description="thread id when no X-Thread-Id header is sent",
    )
    instructions: str | None = Field(None, description="accepted, without effect")
    max_output_tokens: Count | None = Field(None, ge=1, description="cap on the generator's draft")
    temperature: float | None = Field(None, ge=0, le=2, description="the generator's")
    tools: list[dict[str, Any]] | None = None
    text: dict[str, Any] | None = Field(None, description='only {"format": {"type": "text"}}')
    where: dict[str, Any] | None = Field(
        None, description=f"rearag's own field: answer from {WHERE_HELP.removeprefix('only ')}"
    )

    def as_chat(self) -> ChatRequest:
        """The same request as a chat request; UnsupportedField for what neither honours."""
        given = self.model_extra or {}
        for name, why in REFUSED.items():
            if given.get(name) not in (None, False, ""):
                raise UnsupportedField(name, why)
        if self.tools:
            raise UnsupportedField("tools", CHAT_REFUSED["tools"])
        fmt = (self.text or {}).get("format") or {"type": "text"}
        if not isinstance(fmt, dict) or fmt.get("type") != "text":
            raise UnsupportedField("text.format", "answers are text with citations: use text")
        return ChatRequest(
            model=self.model,
            messages=self._messages(),
            stream=self.stream,
            user=self.user,
            max_tokens=self.max_output_tokens,
            temperature=self.temperature,
            where=self.where,
        )

    def ignored(self) -> list[str]:
        """Fields given that take no effect, for the X-Rearag-Ignored header: the fields, and
        the system and developer messages of `input` (rearag answers with its own prompt)."""
        given = [n for n in self.model_extra or {} if n not in REFUSED and n != "tool_choice"]
        names = (["instructions"] if self.instructions else []) + header_names(given)
        items = self.input if isinstance(self.input, list) else []
        return names + [
            f"input[{i}] ({item.role})"
            for i, item in enumerate(items)
            if item.role in ("system", "developer")
        ]

    def _messages(self) -> list[ChatMessage]:
        if isinstance(self.input, str):
            return [ChatMessage(role="user", content=self.input)]
        messages = []
        for i, item in enumerate(self.input):
            if item.type != "message":
                raise UnsupportedField(
                    f"input[{i}].type", f"{item.type!r} items are not supported: send messages"
                )
            if item.role not in ("user", "assistant", "system", "developer"):
                raise UnsupportedField(f"input[{i}].role", f"{item.role!r} messages need tools")
            parts = [item.content] if isinstance(item.content, str) else item.content
            texts = []
            for j, part in enumerate(parts):
                if isinstance(part, str):
                    texts.append(part)
                elif part.type in ("input_text", "output_text", "text"):
                    texts.append(part.text)
                else:
                    raise UnsupportedField(
                        f"input[{i}].content[{j}].type",
                        f"{part.type!r} content is not supported: send text parts only",
                    )
            messages.append(ChatMessage(role=item.role, content="".join(texts)))  # type: ignore[arg-type]
        if not any(m.role == "user" for m in messages):
            raise UnsupportedField("input", "no user message: send the question in input")
        return messages


def annotations(answer: Answer, text: str) -> list[dict[str, Any]]:
    """One annotation per `[n]` of the answer's own text that names a citation (the Sources
    list after it is left as text)."""
    body_end = text.find("\n\nSources:\n")
    cited = {c.number: c for c in answer.citations}
    found = []
    for marker in _MARKER.finditer(text, 0, body_end if body_end >= 0 else len(text)):
        citation = cited.get(int(marker.group(1)))
        if citation is None:
            continue
        extra = {"number": citation.number, "title": citation.label, "pages": citation.pages}
        if citation.source.startswith(("http://", "https://")):
            found.append(
                {
                    "type": "url_citation",
                    "url": citation.source,
                    "start_index": marker.start(),
                    "end_index": marker.end(),
                    "file_id": citation.id,
                    **extra,
                }
            )
        else:
            found.append(
                {
                    "type": "file_citation",
                    "file_id": citation.id,
                    "filename": citation.source,
                    "index": marker.start(),
                    **extra,
                }
            )
    return found


def response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


def _message(item_id: str, text: str, notes: list[dict[str, Any]], status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": [part] if text or status == "completed" else [],
    }


def response_body(
    rid: str,
    model: str,
    created: int,
    *,
    answer: Answer | None = None,
    item_id: str = "",
    status: Literal["in_progress", "completed"] = "completed",
) -> dict[str, Any]:
    """A `response` object: in progress (no output yet) or completed with the answer."""
    output = []
    usage = None
    if answer is not None:
        text = message_text(answer)
        output = [_message(item_id, text, annotations(answer, text), "completed")]
        usage = {
            "input_tokens": answer.usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": answer.usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": answer.usage.total_tokens,
        }
    body: dict[str, Any] = {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": False,
        "tool_choice": "none",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "usage": usage,
    }
    if answer is not None:
        body["rearag"] = answer.model_dump()
    return body


def new_response(model: str, answer: Answer) -> dict[str, Any]:
    return response_body(
        response_id(), model, int(time.time()), answer=answer, item_id=f"msg_{uuid.uuid4().hex}"
    )


async def response_events(
    events: AsyncIterator[Event], model: str, timeout_s: float
) -> AsyncIterator[bytes]:
    """The answer as the Responses API streams it: created, the message and its text part
    opened, `response.output_text.delta` as each sentence of the draft passes the grounding
    check (then whatever only the final answer decides), one
    `response.output_text.annotation.added` per citation, the text and message done, and
    `response.completed` with the whole response (and rearag's answer data). An error ends the
    stream with an `error` event."""
    rid, item_id, created = response_id(), f"msg_{uuid.uuid4().hex}", int(time.time())
    seq = 0

    def event(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        body = {"type": kind, "sequence_number": seq, **fields}
        seq += 1
        data = json.dumps(body, ensure_ascii=False)
        return f"event: {kind}\ndata: {data}\n\n".encode(errors="replace")

    place = {"item_id": item_id, "output_index": 0, "content_index": 0}
    started = response_body(rid, model, created, status="in_progress")
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    yield event(
        "response.output_item.added",
        output_index=0,
        item=_message(item_id, "", [], "in_progress"),
    )
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    yield event("response.content_part.added", part=empty, **place)
    sent = ""
    try:
        async for node, update in events:
            if node == "content":
                sent += update["text"]
                delta = update["text"]
                yield event("response.output_text.delta", delta=delta, logprobs=[], **place)
            elif node == "answer":
                answer = update["answer"]
                text = message_text(answer)
                if rest := unsent(text, sent, "responses stream"):
                    yield event("response.output_text.delta", delta=rest, logprobs=[], **place)
                notes = annotations(answer, text)
                for i, note in enumerate(notes):
                    yield event(
                        "response.output_text.annotation.added",
                        annotation=note,
                        annotation_index=i,
                        **place,
                    )
                part = {"type": "output_text", "text": text, "annotations": notes, "logprobs": []}
                yield event("response.output_text.done", text=text, logprobs=[], **place)
                yield event("response.content_part.done", part=part, **place)
                done = response_body(rid, model, created, answer=answer, item_id=item_id)
                yield event("response.output_item.done", output_index=0, item=done["output"][0])
                yield event("response.completed", response=done)
                return
        # The graph's promise: its stream ends with the answer. A client waits for an end.
        log.error("responses stream: the agent's stream ended without an answer")
        yield event("error", code="internal_error", message=INTERNAL, param=None)
    except Exception as exc:
        err = api_error(exc, "responses stream", timeout_s)
        yield event("error", code=err.code, message=err.message, param=None)
    finally:
        await events.aclose()  # type: ignore[attr-defined]
