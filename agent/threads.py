"""What `rearag threads` lists, deletes and prunes, in whichever store keeps conversations
(agent/thread_store.py: SQLite under $REARAG_HOME, or Postgres)."""

from __future__ import annotations

import difflib
import re
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from rearag.agent.thread_store import (
    ThreadStore,
    checkpoints_path,
    is_postgres,
    open_store,
    read_only_sqlite,
    sqlite_unusable,
)
from rearag.core.config import Settings
from rearag.core.errors import NotFoundError
from rearag.tools.index_home import check_writable, is_read_only

# The thread a question without a thread id ran on before such questions saved nothing (older
# rearag versions): no caller can continue it, so `prune` deletes it.
_ONCE = re.compile(r"once-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}")


@dataclass(frozen=True)
class ThreadInfo:
    thread_id: str
    messages: int  # in the conversation's history: a question and its answer are two
    checkpoints: int  # stored, in every namespace
    last_active: str  # ISO time of the latest checkpoint


@dataclass(frozen=True)
class PruneReport:
    checkpoints_removed: int
    threads_removed: int
    bytes_before: int
    bytes_after: int


def list_threads(settings: Settings) -> list[ThreadInfo]:
    """Every thread, the most recently active first; none without a checkpoints file."""
    with _open(settings) as store:
        return [] if store is None else _threads(store)


def delete_threads(settings: Settings, thread_ids: Sequence[str]) -> None:
    """Delete these threads, all or (if one does not exist) none. A turn running on one is
    waited for (up to `serve.request_timeout_s`): it ends first, and the deletion then removes
    it too, so a deleted conversation never comes back."""
    _check_writable(settings, "deleting conversations")
    with _open(settings) as store:
        known = [] if store is None else [t.thread_id for t in _threads(store)]
        for thread_id in thread_ids:
            if thread_id not in known:
                close = difflib.get_close_matches(thread_id, known, n=3)
                hint = f"did you mean {', '.join(close)}?" if close else "see `rearag threads list`"
                raise NotFoundError(f"no thread {thread_id!r}: {hint}")
        if store is not None:
            for thread_id in thread_ids:
                with store.lock(thread_id, settings.serve.request_timeout_s):
                    store.delete(thread_id)


def prune_threads(settings: Settings, older_than_days: float | None = None) -> PruneReport:
    """Keep only the latest checkpoint of every thread; delete the threads older versions kept
    for questions asked without a thread id (no one can continue them) and, with
    `older_than_days`, those last active longer ago than that; then give the space back."""
    _check_writable(settings, "pruning conversations")
    with _open(settings) as store:
        if store is None:
            return PruneReport(0, 0, 0, 0)
        before = store.size()
        threads = _threads(store)
        cutoff = (
            datetime.now(UTC) - timedelta(days=older_than_days)
            if older_than_days is not None
            else None
        )
        gone = [
            t
            for t in threads
            if _ONCE.fullmatch(t.thread_id)
            or (cutoff is not None and datetime.fromisoformat(t.last_active) < cutoff)
        ]
        for thread in gone:
            store.delete(thread.thread_id)
        removed = store.keep_latest() + sum(t.checkpoints for t in gone)
        store.compact()
        return PruneReport(removed, len(gone), before, store.size())


@contextmanager
def _open(settings: Settings) -> Iterator[ThreadStore | None]:
    """The store of `agent.checkpointer`; None for SQLite without a checkpoints file yet.
    The store's errors (a locked or corrupt file, a database gone or in conflict) as one
    line."""
    path = checkpoints_path(settings)
    in_sqlite = not is_postgres(settings.agent.checkpointer)
    if in_sqlite and not path.is_file():
        yield None
        return
    try:
        # A read-only home's conversations can be listed (changes are refused before this).
        read_only = in_sqlite and is_read_only(settings.home)
        store = read_only_sqlite(settings) if read_only else open_store(settings)
        try:
            with store.failures():
                yield store
        finally:
            store.close()
    except sqlite3.Error as exc:
        raise sqlite_unusable(path, exc) from exc


def _check_writable(settings: Settings, what: str) -> None:
    if not is_postgres(settings.agent.checkpointer):
        check_writable(settings.home, what)


def _threads(store: ThreadStore) -> list[ThreadInfo]:
    threads = []
    for thread_id, checkpoints in store.checkpoint_counts().items():
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        latest = store.saver.get_tuple(config)
        if latest is None:  # only subgraph checkpoints: not one of our conversations
            continue
        history = latest.checkpoint["channel_values"].get("history", [])
        threads.append(ThreadInfo(thread_id, len(history), checkpoints, latest.checkpoint["ts"]))
    return sorted(threads, key=lambda t: t.last_active, reverse=True)
