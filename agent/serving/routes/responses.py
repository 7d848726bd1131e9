"""`POST /v1/responses`: the agent in OpenAI's Responses API shape, streamed (typed server-sent
events) or not; the answer's citations are annotations of its output text, so clients get them
as data (the `openai` SDK's `responses.create`, langchain-openai's `use_responses_api`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from rearag.agent.serving.asking import ask, final_answer
from rearag.agent.serving.chat_stream import ClosingStream
from rearag.agent.serving.deps import Access, Agents, ConversationLocks, Serve
from rearag.agent.serving.errors import responses
from rearag.agent.serving.openai_api import answer_headers
from rearag.agent.serving.responses_api import ResponsesRequest, new_response, response_events
from rearag.core import thread_ids

router = APIRouter()
_OK: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "a `response` whose output text carries the citations as annotations; "
        "with `stream`, the Responses API's events as server-sent events",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "text/event-stream": {"schema": {"type": "string"}},
        },
    }
}


@router.post(
    "/v1/responses",
    responses={**_OK, **responses(400, 404, 409, 413, 422, 500, 502, 503, 504, 507)},
)
async def create_response(
    body: ResponsesRequest,
    agents: Agents,
    cfg: Serve,
    conversations: ConversationLocks,
    access: Access,
    x_thread_id: Annotated[str | None, Header(max_length=thread_ids.MAX_CHARS)] = None,
) -> Response:
    """Answer the last user message of `input` with citations, as `/v1/chat/completions`
    does (threads by X-Thread-Id or `user`, `where`, keys). Each `[n]` of the output text is
    a `file_citation` (or `url_citation`) annotation naming the cited passage's chunk id,
    source, title and pages."""
    chat = body.as_chat()
    events = ask(chat, agents, cfg, conversations, access, x_thread_id).events
    ignored = body.ignored()
    headers = {"X-Rearag-Ignored": ", ".join(ignored)} if ignored else {}
    timeout = cfg.request_timeout_s
    if body.stream:
        return ClosingStream(
            response_events(events, body.model, timeout),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **headers},
        )
    answer = await final_answer(events, timeout, "responses")
    headers.update(answer_headers(answer))
    return JSONResponse(new_response(body.model, answer), headers=headers)
