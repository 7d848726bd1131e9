"""Starting the agent on a chat request: the one path of `/v1/chat/completions` and
`/v1/responses` (which reads its request as a chat request), so both answer, remember threads,
honour keys and time out alike."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import NamedTuple

from rearag.agent.rag import RAGAgent
from rearag.agent.serving.access import Grant
from rearag.agent.serving.errors import INTERNAL, ApiError, api_error
from rearag.agent.serving.openai_api import ChatRequest
from rearag.agent.serving.paths import shown_events
from rearag.agent.serving.registry import AgentRegistry
from rearag.agent.serving.worker import Conversations, Event, run_in_worker
from rearag.core import thread_ids
from rearag.core.config import ServeConfig
from rearag.core.filters import Where
from rearag.core.types import Answer

log = logging.getLogger("rearag.serve")


class Asked(NamedTuple):
    agent: RAGAgent
    events: AsyncIterator[Event]  # the graph's events; the last is the answer


def ask(
    body: ChatRequest,
    agents: AgentRegistry,
    cfg: ServeConfig,
    conversations: Conversations,
    access: Grant,
    thread_header: str | None,
) -> Asked:
    """Check the request (400s before any work), then run the agent in a worker. The
    conversation is the X-Thread-Id header's, else the `user` field's, else the request's
    own earlier messages."""
    body.check_supported()
    where = access.filter(Where.parse(body.where))
    agent = agents.agent(access.collection(body.model, agents)).value
    question = agent.check_question(body.question())
    asked_thread = thread_ids.thread_id(thread_header) or thread_ids.thread_id(body.user)
    thread = access.thread(asked_thread)
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
    shown = _as_asked(shown_events(run, cfg), asked_thread)
    events = run_in_worker(shown, conversations.lock(thread), timeout, timeout)
    return Asked(agent, events)


def _as_asked(
    run: Callable[[], Iterator[Event]], thread: str | None
) -> Callable[[], Iterator[Event]]:
    """The events with the answer's thread id as the client named it (not as its key's)."""

    def events() -> Iterator[Event]:
        for node, update in run():
            if node == "answer":
                update = {"answer": update["answer"].model_copy(update={"thread_id": thread})}
            yield node, update

    return events


async def final_answer(events: AsyncIterator[Event], timeout_s: float, route: str) -> Answer:
    """The answer at the end of the events; their errors as API errors."""
    answer = None
    try:
        async for node, update in events:
            if node == "answer":
                answer = update["answer"]
    except Exception as exc:
        raise api_error(exc, route, timeout_s) from None
    if answer is None:  # the graph's promise: its stream ends with the answer
        log.error("%s: the agent's stream ended without an answer", route)
        raise ApiError(500, INTERNAL, "internal_error")
    return answer
