"""Conversation threads in $REARAG_HOME/checkpoints.sqlite: the SQLite checkpointer, what
`RAGAgent` does to a thread after each run (keep its latest checkpoint only, or undo a run that
failed), and what `rearag threads` lists, deletes and prunes.

Deleting a thread's older checkpoints by SQL is safe for our graph: its state has no
`DeltaChannel` (see agent/state.py: plain values and one `operator.add` list), so every
checkpoint holds the whole state, the conversation's `history` included, and none needs its
ancestors to be read. LangGraph's warning on `BaseCheckpointSaver.prune` is about delta
channels, which rebuild their value from the parent chain.
"""

from __future__ import annotations

import difflib
import fcntl
import hashlib
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from rearag.core.config import Settings
from rearag.core.errors import BackendError, NotFoundError, ThreadBusy

# The thread a question without a thread id runs on (RAGAgent): no caller can continue it.
ONCE_PREFIX = "once-"
_ONCE = re.compile(rf"{ONCE_PREFIX}[0-9a-f]{{8}}(-[0-9a-f]{{4}}){{3}}-[0-9a-f]{{12}}")


def checkpoint_serde() -> JsonPlusSerializer:
    """LangGraph's serializer, allowed to restore our state types (and nothing else)."""
    return JsonPlusSerializer(
        allowed_msgpack_modules=[
            ("rearag.core.types", "Passage"),
            ("rearag.core.types", "Citation"),
        ]
    )


def checkpoints_path(settings: Settings) -> Path:
    return settings.home / "checkpoints.sqlite"


def sqlite_checkpointer(settings: Settings) -> SqliteSaver:
    """The saver on $REARAG_HOME/checkpoints.sqlite, its tables made now: a damaged or locked
    file is one BackendError here, not a traceback from the first question."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = checkpoints_path(settings)
    try:
        # LangGraph may call the saver from worker threads.
        saver = SqliteSaver(
            sqlite3.connect(path, check_same_thread=False), serde=checkpoint_serde()
        )
        saver.setup()
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from exc
    return saver


def _unusable(path: Path, exc: sqlite3.Error) -> BackendError:
    return BackendError(
        f"{path}: {exc} (another rearag holding it locked? if the file is damaged, move it "
        "aside: conversations start afresh)"
    )


@contextmanager
def turn_lock(settings: Settings, thread_id: str, wait_s: float) -> Iterator[None]:
    """One turn of `thread_id` at a time across every process on this $REARAG_HOME (a server,
    its workers, `rearag ask --thread`, `rearag chat`, MCP): an exclusive file lock beside
    checkpoints.sqlite, held from reading the thread to writing it. Without it two turns read
    the same history and the last to write drops the other's; a failed run's undo and
    keep-latest touched another run's checkpoint. Waits up to `wait_s`, then ThreadBusy. The
    kernel frees the lock of a process that dies. Lock files stay (one small file per thread
    ever locked): removing one while another process waits on it would break the lock."""
    folder = settings.home / "thread-locks"
    path = folder / f"{hashlib.sha256(thread_id.encode()).hexdigest()[:32]}.lock"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 - closed below, after the lock is released
    except OSError as exc:
        raise BackendError(
            f"{path}: cannot open the conversation's lock ({exc.strerror}): a conversation "
            "needs a writable $REARAG_HOME"
        ) from None
    deadline = time.monotonic() + wait_s
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ThreadBusy(
                        f"an earlier question on conversation thread {thread_id!r} is still "
                        f"being answered by another process (waited {wait_s:g} s): retry when "
                        "it is done, or use another thread id"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# Each runs under the saver's lock (its `cursor()`), since a server's worker threads share
# the connection, and commits when done.


def latest_checkpoint_id(saver: SqliteSaver, thread_id: str) -> str | None:
    with saver.cursor(transaction=False) as cur:
        row = cur.execute(
            "SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    return row[0]


def undo_run(saver: SqliteSaver, thread_id: str, before: str | None) -> None:
    """Remove what a run wrote to the thread after checkpoint `before` (all of it when None):
    a run that failed midway must not leave its question without an answer in the history.
    Checkpoint ids are uuid6, so they sort by time."""
    with saver.cursor() as cur:
        for table in ("checkpoints", "writes"):
            cur.execute(
                f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id > ?",
                (thread_id, before or ""),
            )


def keep_latest(saver: SqliteSaver, thread_id: str | None = None) -> int:
    """Delete every checkpoint but the latest of each thread and namespace (of `thread_id`
    only, when given), with the pending writes of those deleted; the number deleted."""
    only = "AND thread_id = ?" if thread_id is not None else ""
    params = (thread_id,) if thread_id is not None else ()
    with saver.cursor() as cur:
        removed = cur.execute(
            "DELETE FROM checkpoints WHERE checkpoint_id < (SELECT MAX(c.checkpoint_id) "
            "FROM checkpoints c WHERE c.thread_id = checkpoints.thread_id "
            f"AND c.checkpoint_ns = checkpoints.checkpoint_ns) {only}",
            params,
        ).rowcount
        cur.execute(
            "DELETE FROM writes WHERE checkpoint_id < (SELECT MAX(c.checkpoint_id) "
            "FROM checkpoints c WHERE c.thread_id = writes.thread_id "
            f"AND c.checkpoint_ns = writes.checkpoint_ns) {only}",
            params,
        )
    return removed


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
    with _open(settings) as saver:
        return [] if saver is None else _threads(saver)


def delete_threads(settings: Settings, thread_ids: Sequence[str]) -> None:
    """Delete these threads, all or (if one does not exist) none. A turn running on one is
    waited for (up to `serve.request_timeout_s`): it ends first, and the deletion then removes
    it too, so a deleted conversation never comes back."""
    with _open(settings) as saver:
        known = [] if saver is None else [t.thread_id for t in _threads(saver)]
        for thread_id in thread_ids:
            if thread_id not in known:
                close = difflib.get_close_matches(thread_id, known, n=3)
                hint = f"did you mean {', '.join(close)}?" if close else "see `rearag threads list`"
                raise NotFoundError(f"no thread {thread_id!r}: {hint}")
        if saver is not None:
            for thread_id in thread_ids:
                with turn_lock(settings, thread_id, settings.serve.request_timeout_s):
                    saver.delete_thread(thread_id)


def prune_threads(settings: Settings, older_than_days: float | None = None) -> PruneReport:
    """Keep only the latest checkpoint of every thread; delete the threads of questions asked
    without a thread id (no one can continue them) and, with `older_than_days`, those last
    active longer ago than that; then give the space back to the file system."""
    path = checkpoints_path(settings)
    before = _size(path)
    with _open(settings) as saver:
        if saver is None:
            return PruneReport(0, 0, 0, 0)
        threads = _threads(saver)
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
            saver.delete_thread(thread.thread_id)
        removed = keep_latest(saver) + sum(t.checkpoints for t in gone)
        with saver.lock:
            saver.conn.execute("VACUUM")
            # The file's size is what is left once the write-ahead log is folded back in.
            saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return PruneReport(removed, len(gone), before, _size(path))


@contextmanager
def _open(settings: Settings) -> Iterator[SqliteSaver | None]:
    """The checkpointer on the existing file, else None; SQLite's errors (a locked or
    corrupt file) as one BackendError."""
    path = checkpoints_path(settings)
    if not path.is_file():
        yield None
        return
    try:
        saver = sqlite_checkpointer(settings)
        with closing(saver.conn):
            yield saver
    except sqlite3.Error as exc:
        raise _unusable(path, exc) from exc


def _threads(saver: SqliteSaver) -> list[ThreadInfo]:
    with saver.cursor(transaction=False) as cur:
        counts = cur.execute(
            "SELECT thread_id, COUNT(*) FROM checkpoints GROUP BY thread_id"
        ).fetchall()
    threads = []
    for thread_id, checkpoints in counts:
        latest = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        if latest is None:  # only subgraph checkpoints: not one of our conversations
            continue
        history = latest.checkpoint["channel_values"].get("history", [])
        threads.append(ThreadInfo(thread_id, len(history), checkpoints, latest.checkpoint["ts"]))
    return sorted(threads, key=lambda t: t.last_active, reverse=True)


def _size(path: Path) -> int:
    """Bytes on disk: the database and its write-ahead log."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.is_file())
