"""`POST /v1/chat/completions`: the agent answers the latest user message, streamed (SSE) or
not, in OpenAI's shape. The graph is blocking (a local model holds a torch lock), so it runs
in a worker thread; questions on one conversation thread run one at a time."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from rearag.agent.serving.asking import ask, final_answer
from rearag.agent.serving.chat_stream import ClosingStream, sse_chunks
from rearag.agent.serving.deps import Access, Agents, ConversationLocks, Serve
from rearag.agent.serving.errors import responses
from rearag.agent.serving.openai_api import ChatCompletion, ChatRequest, answer_headers, completion
from rearag.core import thread_ids

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
    agent, events = ask(body, agents, cfg, conversations, access, x_thread_id)
    ignored = body.ignored()
    headers = {"X-Rearag-Ignored": ", ".join(ignored)} if ignored else {}
    timeout = cfg.request_timeout_s
    if body.stream:
        return ClosingStream(
            sse_chunks(events, body.model, body.include_usage, timeout, agent.reranks_with_model),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
        )
    answer = await final_answer(events, timeout, "chat")
    headers.update(answer_headers(answer))
    return JSONResponse(completion(body.model, answer).model_dump(), headers=headers)
