"""A streamed chat answer: the agent's events as OpenAI chunks over server-sent events."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from rearag.agent.answer_text import message_text
from rearag.agent.rag import describe_step
from rearag.agent.serving.errors import api_error, error_body
from rearag.agent.serving.openai_api import (
    ChatCompletionChunk,
    ChunkChoice,
    completion_id,
)
from rearag.agent.serving.worker import Event

log = logging.getLogger("rearag.serve")


class ClosingStream(StreamingResponse):
    """A streaming response that closes its events however the response ends (Starlette
    leaves the iterator to the garbage collector when sending fails or the client leaves), so
    a question still waiting for its conversation thread gives up at once."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]


def unsent(text: str, sent: str, stream: str) -> str:
    """What of the answer's `text` a stream that has sent `sent` still owes. The graph
    promises that what it streamed is the answer's start; were it not, nothing more is sent
    rather than a garbled text, and the log says so."""
    if not text.startswith(sent):
        log.error("%s: the streamed text is not the answer's start", stream)
        return ""
    return text[len(sent) :]


def _data(body: dict) -> bytes:
    # Encoded here, where a failure is an error event: text that cannot be UTF-8 (a lone
    # surrogate) would otherwise break the stream outside the generator.
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode(errors="replace")


async def sse_chunks(
    events: AsyncIterator[Event],
    model: str,
    include_usage: bool,
    timeout_s: float,
    reranks_with_model: bool = True,
) -> AsyncIterator[bytes]:
    """The answer as OpenAI chunks. `delta.content` carries the answer's text as each sentence
    of the draft passes the grounding check, then whatever only the final answer decides (an
    extracted answer or the abstention, the sources list), so a client that joins the content
    deltas gets exactly the non-streaming message. Progress goes in the `rearag` field: each
    finished node, the draft's unchecked tokens, and last the whole answer. Every exit ends
    with an error event where one is due, then `[DONE]`. `reranks_with_model`: as the
    agent's (`RAGAgent.reranks_with_model`), for the rerank step's words."""
    cid = completion_id()

    def chunk(delta: dict[str, str], finish: str | None = None, extra: dict | None = None) -> bytes:
        choice = ChunkChoice(delta=delta, finish_reason=finish)
        body = ChatCompletionChunk(id=cid, model=model, choices=[choice], rearag=extra)
        return _data(body.model_dump())

    yield chunk({"role": "assistant", "content": ""})
    sent = ""
    try:
        async for node, update in events:
            if node == "content":
                sent += update["text"]
                yield chunk({"content": update["text"]})
            elif node == "token":
                yield chunk({}, extra={"event": "token", "text": update["text"]})
            elif node == "answer":
                answer = update["answer"]
                if rest := unsent(message_text(answer), sent, "chat stream"):
                    yield chunk({"content": rest})
                yield chunk({}, "stop", extra={"event": "answer", **answer.model_dump()})
                if include_usage:
                    usage = ChatCompletionChunk(id=cid, model=model, choices=[], usage=answer.usage)
                    yield _data(usage.model_dump())
            else:
                text = describe_step(node, update, reranks_with_model=reranks_with_model)
                yield chunk({}, extra={"event": "step", "node": node, "text": text})
    except Exception as exc:
        err = api_error(exc, "chat stream", timeout_s)
        yield _data(error_body(err.status, err.message, err.code))
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    yield b"data: [DONE]\n\n"
