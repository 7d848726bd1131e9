"""`POST /v1/chat/completions`: the agent answers the latest user message, streamed (SSE) or
not, in OpenAI's shape. The graph is blocking (a local model holds a torch lock), so it runs
in a worker thread; questions on one conversation thread run one at a time."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from rearag.agent.serving.chat_stream import ClosingStream, sse_chunks
from rearag.agent.serving.deps import Access, Agents, ConversationLocks, Serve
from rearag.agent.serving.errors import INTERNAL, ApiError, api_error, responses
from rearag.agent.serving.openai_api import ChatCompletion, ChatRequest, answer_headers, completion
from rearag.agent.serving.paths import shown_events
from rearag.agent.serving.worker import Event, run_in_worker
from rearag.core import thread_ids
from rearag.core.filters import Where
from rearag.core.types import Answer

log = logging.getLogger("rearag.serve")
router = APIRouter()
_STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the answer; with `stream`, OpenAI chunks as server-sent events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={**_STREAMED, **responses(400, 404, 409, 413, 422, 500, 502, 503, 504, 507)},
)
async def chat(
    body: ChatRequest,
    agents: Agents,
    cfg: Serve,
    conversations: ConversationLocks,
    access: Access,
    x_thread_id: Annotated[str | None, Header(max_length=thread_ids.MAX_CHARS)] = None,
) -> Response:
    """Answer the latest user message with citations. The conversation is remembered per
    thread: the X-Thread-Id header, else the `user` field; without either, the earlier
    messages of the request are the history. Streamed, the answer's sentences arrive in
    `delta.content` as each passes the grounding check; the pipeline's progress (steps, the
    draft's tokens) in the `rearag` field."""
    body.check_supported()
    where = access.filter(Where.parse(body.where))  # a malformed filter: 400 before any work
    agent = agents.agent(access.collection(body.model, agents)).value
    question = agent.check_question(body.question())
    thread = access.thread(thread_ids.thread_id(x_thread_id) or thread_ids.thread_id(body.user))
    ignored = body.ignored()
    headers = {"X-Rearag-Ignored": ", ".join(ignored)} if ignored else {}
    # After any earlier question on its thread (waiting up to the request timeout), then
    # within the request timeout. A turn of another process on the thread is waited for a
    # little less, so the client hears 409 thread_busy rather than a 504 at the same moment.
    timeout = cfg.request_timeout_s
    run = functools.partial(
        agent.stream,
        question,
        thread,
        tokens=body.stream,
        history=None if thread else body.history(),
        generation=body.generation(),
        wait_s=timeout - min(1.0, timeout / 2),
        where=where,
    )
    run = shown_events(run, cfg)
    events = run_in_worker(run, conversations.lock(thread), timeout, timeout)
    if body.stream:
        return ClosingStream(
            sse_chunks(events, body.model, body.include_usage, timeout, agent.reranks_with_model),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
        )
    answer = await _final_answer(events, timeout)
    headers.update(answer_headers(answer))
    return JSONResponse(completion(body.model, answer).model_dump(), headers=headers)


async def _final_answer(events: AsyncIterator[Event], timeout_s: float) -> Answer:
    answer = None
    try:
        async for node, update in events:
            if node == "answer":
                answer = update["answer"]
    except Exception as exc:
        raise api_error(exc, "chat", timeout_s) from None
    if answer is None:  # the graph's promise: its stream ends with the answer
        log.error("chat: the agent's stream ended without an answer")
        raise ApiError(500, INTERNAL, "internal_error")
    return answer
