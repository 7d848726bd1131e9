"""Running the agent off the server's event loop, one question at a time per conversation.

Each question runs in its own worker thread, and that thread (not the HTTP request) holds its
conversation's lock from start to end. A request can end early (the time ran out, the client
left, the response could not be sent), but Python cannot stop a thread mid-call: were the lock
freed with the request, the next question on the thread would race the unfinished one and one
of the two turns would vanish from the history. Nor is the run stopped between steps: by then
the question is in the conversation, and stopping would leave it without its answer. So a
question runs to its end and its turn is recorded whole, the lock is freed when the work is,
on every path, and the next question on the thread waits for it (or is told it is busy).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any, TypeVar

from rearag.agent.serving.errors import api_error
from rearag.core.errors import ThreadBusy

Event = tuple[str, dict[str, Any]]
T = TypeVar("T")
_ADMITTED = ("admitted", {})  # the worker holds its conversation's lock and has started


class Conversations:
    """A lock per conversation thread, kept only while some question on it runs or waits."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    def lock(self, thread: str | None) -> Any:
        if thread is None:  # a question without a thread shares nothing with others
            return None
        with self._guard:
            lock = self._locks.get(thread)
            if lock is None:
                lock = self._locks[thread] = threading.Lock()
            return lock


async def run_in_worker(
    run: Callable[[], Iterator[Event]], lock: Any, wait_s: float, timeout_s: float
) -> AsyncIterator[Event]:
    """`run()`'s events, iterated in a worker thread that first takes `lock` (a conversation's,
    or None). Raises ThreadBusy when the lock is not free within `wait_s`, TimeoutError when
    the events have not ended `timeout_s` after the worker started, and whatever `run()`
    raised. A worker still waiting for its lock when this generator ends does not start."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Event | BaseException | None] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Event | BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down
            stop.set()

    def work() -> None:
        if lock is not None and not lock.acquire(timeout=wait_s):
            put(ThreadBusy(_BUSY.format(wait_s=wait_s)))
            return
        try:
            if stop.is_set():  # the request ended while this waited
                return
            put(_ADMITTED)
            for event in run():
                put(event)
            put(None)
        except BaseException as exc:  # handed to the loop, which reports it
            put(exc)
        finally:
            if lock is not None:
                lock.release()

    # A daemon: a worker stuck in a model call must not keep a stopping server alive.
    threading.Thread(target=work, name="rearag-worker", daemon=True).start()
    try:
        deadline = loop.time() + wait_s + 1.0  # the worker gives up waiting first
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            item = await asyncio.wait_for(queue.get(), remaining)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            if item is _ADMITTED:
                deadline = loop.time() + timeout_s
                continue
            yield item
    finally:
        stop.set()


async def call_in_worker(fn: Callable[[], T], timeout_s: float) -> T:
    """`fn()` in a worker thread, within `timeout_s` (else TimeoutError). On timeout the thread
    is abandoned (Python cannot stop it) and finishes in the background; it is a daemon, so it
    never holds up a shutdown."""

    def run() -> Iterator[Event]:
        yield "result", {"value": fn()}

    async with aclosing(run_in_worker(run, None, timeout_s, timeout_s)) as events:
        [(_, result)] = [event async for event in events]
    return result["value"]


async def blocking(what: str, timeout_s: float, fn: Callable[[], T]) -> T:
    """`fn()` for a route: off the event loop, within the request timeout; what it raises
    becomes the client's error."""
    try:
        return await call_in_worker(fn, timeout_s)
    except Exception as exc:
        raise api_error(exc, what, timeout_s) from None


_BUSY = (
    "an earlier question on this conversation thread is still being answered "
    "(waited {wait_s:g} s): retry when it is done, or use another thread id"
)
