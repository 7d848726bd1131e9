"""Where conversations are kept: LangGraph's SQLite checkpointer in
$REARAG_HOME/checkpoints.sqlite (the embedded default) or its Postgres checkpointer
(`agent.checkpointer = "postgresql://…"`, shared by replicas on several hosts), each with what
rearag does beside LangGraph: one turn of a thread at a time across processes (a file lock
beside the SQLite file; a Postgres advisory lock), undoing a failed run, keeping only a
thread's latest checkpoint, listing, deleting and compacting.

Deleting a thread's older checkpoints is safe for our graph: its state has no `DeltaChannel`
(see agent/state.py: plain values and one `operator.add` list), so every checkpoint holds the
whole state, the conversation's `history` included, and none needs its ancestors to be read.
"""

from __future__ import annotations

import fcntl
import hashlib
import sqlite3
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from rearag.core.config import Settings
from rearag.core.errors import BackendError, DiskFull, ReadOnlyStorage, RearagError, ThreadBusy
from rearag.tools.index_home import is_read_only

_POLL_S = 0.05  # between tries of a busy thread's lock


def checkpoint_serde() -> JsonPlusSerializer:
    """LangGraph's serializer, allowed to restore our state types (and nothing else)."""
    return JsonPlusSerializer(
        allowed_msgpack_modules=[
            ("rearag.core.types", "Passage"),
            ("rearag.core.types", "Citation"),
        ]
    )


def is_postgres(where: str) -> bool:
    return where.startswith(("postgresql://", "postgres://"))


def open_checkpointer(settings: Settings) -> Any:
    """The checkpointer `agent.checkpointer` names, its tables made now: an unreachable or
    damaged database is one BackendError here, not a traceback from the first question. None
    for SQLite in a read-only home, where no conversation can be kept (`no_conversations`)."""
    where = settings.agent.checkpointer
    if is_postgres(where):
        return postgres_checkpointer(where)
    return None if is_read_only(settings.home) else sqlite_checkpointer(settings)


def no_conversations(home: Path) -> ReadOnlyStorage:
    """Why a question with a thread cannot be answered in a read-only home."""
    return ReadOnlyStorage(
        f"{home} is read-only: conversations cannot be kept there; ask without a thread, or "
        "keep conversations in Postgres (agent.checkpointer)",
        home,
    )


def open_store(settings: Settings) -> ThreadStore:
    """`open_checkpointer` with rearag's thread rules around it; ReadOnlyStorage in a read-only
    home."""
    saver = open_checkpointer(settings)
    if saver is None:
        raise no_conversations(settings.home)
    if isinstance(saver, SqliteSaver):
        return SqliteThreads(saver, settings)
    return PostgresThreads(saver, settings)


def store_of(saver: Any, settings: Settings) -> ThreadStore | None:
    """rearag's thread rules around `saver`; None for a checkpointer of another kind (a
    caller's own, left alone)."""
    if isinstance(saver, SqliteSaver):
        return SqliteThreads(saver, settings)
    # Without importing psycopg when unused; on a pool only (ours): the turn locks connect
    # where it does.
    if type(saver).__name__ == "PostgresSaver" and hasattr(saver.conn, "conninfo"):
        return PostgresThreads(saver, settings)
    return None


class ThreadStore(ABC):
    """A checkpointer with the operations LangGraph leaves to us, on one thread or all."""

    def __init__(self, saver: Any, settings: Settings) -> None:
        self.saver = saver
        self.settings = settings

    @abstractmethod
    def lock(self, thread_id: str, wait_s: float) -> AbstractContextManager[None]:
        """One turn of `thread_id` at a time across every process that keeps conversations
        here, held from reading the thread to writing it: without it two turns read the same
        history and the last to write drops the other's, and a failed run's undo or
        keep-latest touches another run's checkpoint. Waits up to `wait_s`, then ThreadBusy.
        A process that dies frees its locks."""

    @abstractmethod
    def latest_id(self, thread_id: str) -> str | None:
        """The thread's newest checkpoint id (uuid6: they sort by time)."""

    @abstractmethod
    def undo(self, thread_id: str, before: str | None) -> None:
        """Remove what a run wrote to the thread after checkpoint `before` (all of it when
        None): a run that failed midway must not leave its question without an answer."""

    @abstractmethod
    def keep_latest(self, thread_id: str | None = None) -> int:
        """Delete every checkpoint but the latest of each thread and namespace (of
        `thread_id` only, when given), with what only they use; the number deleted."""

    @abstractmethod
    def checkpoint_counts(self, thread_id: str | None = None) -> dict[str, int]:
        """Stored checkpoints per thread (of `thread_id` only, when given), every namespace."""

    @abstractmethod
    def compact(self) -> None:
        """Give the space of deleted rows back."""

    @abstractmethod
    def size(self) -> int:
        """Bytes the conversations take."""

    @abstractmethod
    def close(self) -> None: ...

    def delete(self, thread_id: str) -> None:
        self.saver.delete_thread(thread_id)

    @contextmanager
    def failures(self) -> Iterator[None]:
        """Around a run: the store's own failures (a database gone away) as BackendError."""
        yield


def _busy(thread_id: str, wait_s: float) -> ThreadBusy:
    return ThreadBusy(
        f"an earlier question on conversation thread {thread_id!r} is still being answered "
        f"by another process (waited {wait_s:g} s): retry when it is done, or use another "
        "thread id"
    )


# SQLite


def checkpoints_path(settings: Settings) -> Path:
    return settings.home / "checkpoints.sqlite"


def sqlite_checkpointer(settings: Settings) -> SqliteSaver:
    """The saver on $REARAG_HOME/checkpoints.sqlite, its tables made now."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = checkpoints_path(settings)
    try:
        # LangGraph may call the saver from worker threads.
        saver = SqliteSaver(
            sqlite3.connect(path, check_same_thread=False), serde=checkpoint_serde()
        )
        saver.setup()
    except sqlite3.Error as exc:
        raise sqlite_unusable(path, exc) from exc
    return saver


def read_only_sqlite(settings: Settings) -> SqliteThreads:
    """The conversations of a read-only home, for listing: the file opened as immutable, its
    tables taken as made."""
    path = checkpoints_path(settings)
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    saver = SqliteSaver(conn, serde=checkpoint_serde())
    saver.is_setup = True
    return SqliteThreads(saver, settings)


def sqlite_unusable(path: Path, exc: sqlite3.Error) -> RearagError:
    """What a user can do about SQLite's error on the conversations file."""
    if "disk is full" in str(exc) or getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
        return DiskFull(
            f"no space left on {path.parent}: the conversation could not be saved (its earlier "
            "turns are kept); free some space and ask again",
            path.parent,
        )
    if "readonly" in str(exc) or is_read_only(path.parent):
        return no_conversations(path.parent)
    return BackendError(
        f"{path}: {exc} (another rearag holding it locked? if the file is damaged, move it "
        "aside: conversations start afresh)"
    )


class SqliteThreads(ThreadStore):
    """Each query runs under the saver's lock (its `cursor()`), since a server's worker
    threads share the connection, and commits when done."""

    saver: SqliteSaver

    @contextmanager
    def lock(self, thread_id: str, wait_s: float) -> Iterator[None]:
        """An exclusive file lock in $REARAG_HOME/thread-locks. Lock files stay (one small file
        per thread ever locked): removing one while another process waits on it would break
        the lock."""
        folder = self.settings.home / "thread-locks"
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
                        raise _busy(thread_id, wait_s) from None
                    time.sleep(_POLL_S)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def failures(self) -> Iterator[None]:
        """A full or read-only disk under the file as one line naming it (HTTP 507 or 503);
        other SQLite failures as BackendError."""
        try:
            yield
        except sqlite3.Error as exc:
            raise sqlite_unusable(checkpoints_path(self.settings), exc) from None

    def latest_id(self, thread_id: str) -> str | None:
        with self.saver.cursor(transaction=False) as cur:
            row = cur.execute(
                "SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?", (thread_id,)
            ).fetchone()
        return row[0]

    def undo(self, thread_id: str, before: str | None) -> None:
        with self.saver.cursor() as cur:
            for table in ("checkpoints", "writes"):
                cur.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id > ?",
                    (thread_id, before or ""),
                )

    def keep_latest(self, thread_id: str | None = None) -> int:
        only = "AND thread_id = ?" if thread_id is not None else ""
        params = (thread_id,) if thread_id is not None else ()
        with self.saver.cursor() as cur:
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

    def checkpoint_counts(self, thread_id: str | None = None) -> dict[str, int]:
        only, params = ("WHERE thread_id = ?", (thread_id,)) if thread_id is not None else ("", ())
        with self.saver.cursor(transaction=False) as cur:
            rows = cur.execute(
                f"SELECT thread_id, COUNT(*) FROM checkpoints {only} GROUP BY thread_id", params
            )
            return dict(rows.fetchall())

    def compact(self) -> None:
        with self.saver.lock:
            self.saver.conn.execute("VACUUM")
            # The file's size is what is left once the write-ahead log is folded back in.
            self.saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def size(self) -> int:
        """Bytes on disk: the database and its write-ahead log."""
        path = checkpoints_path(self.settings)
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.is_file())

    def close(self) -> None:
        self.saver.conn.close()


# Postgres

_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
_SETUP_LOCK = 0x72656172_6167  # advisory key: one process makes or migrates the tables


def postgres_where(url: str) -> str:
    """The database a URL names, without its user and password: for messages and logs. The
    credentials end at the URL's last "@", since a password may hold an unescaped "@" or
    "/"; the query string is left out too."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "postgresql://(unreadable URL)"
    return f"{scheme}://{rest.rsplit('@', 1)[-1].split('?', 1)[0]}"


def _secrets(url: str) -> list[str]:
    """The credentials of `url` as they could appear in an error message, longest first."""
    credentials = url.partition("://")[2].rsplit("@", 1)[0] if "@" in url else ""
    password = credentials.partition(":")[2]
    found = {credentials, password, urllib.parse.unquote(password)} - {""}
    return sorted(found, key=len, reverse=True)


def postgres_checkpointer(url: str) -> Any:
    """LangGraph's PostgresSaver on a connection pool (connections that drop are replaced).
    Its password is best given by PGPASSWORD or ~/.pgpass rather than in the URL."""
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
        from psycopg_pool import ConnectionPool
    except ImportError:
        raise BackendError(
            "agent.checkpointer is a Postgres URL but its driver is not installed: "
            "pip install 'rearag[postgres]'"
        ) from None
    try:
        with psycopg.connect(url, connect_timeout=10) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise postgres_unusable(url, exc) from None
    pool = ConnectionPool(
        url,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        min_size=1,
        max_size=8,
        check=ConnectionPool.check_connection,
        open=True,
    )
    saver = PostgresSaver(pool, serde=checkpoint_serde())
    try:
        with pool.connection() as conn:  # replicas starting together: one makes the tables
            conn.execute("SELECT pg_advisory_lock(%s)", (_SETUP_LOCK,))
            try:
                saver.setup()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
    except psycopg.Error as exc:
        pool.close()
        raise postgres_unusable(url, exc) from None
    return saver


def postgres_unusable(url: str, exc: Exception) -> BackendError:
    """The database's failure in one line, naming it without its credentials (the driver's
    message may quote them, e.g. a badly escaped password)."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in _secrets(url):
        reason = reason.replace(secret, "***")
    return BackendError(
        f"conversations database {postgres_where(url)}: {reason} (is PostgreSQL running "
        "there, and is agent.checkpointer right? a password goes in PGPASSWORD or ~/.pgpass)"
    )


class PostgresThreads(ThreadStore):
    def __init__(self, saver: Any, settings: Settings) -> None:
        super().__init__(saver, settings)
        # Where the turn locks open their own connections: the saver's pool's (ours, or a
        # caller's), else the configured URL.
        self.url: str = getattr(saver.conn, "conninfo", None) or settings.agent.checkpointer

    @contextmanager
    def failures(self) -> Iterator[None]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise postgres_unusable(self.url, exc) from None

    @contextmanager
    def lock(self, thread_id: str, wait_s: float) -> Iterator[None]:
        """A session advisory lock on a connection of its own, kept for the turn: the
        database frees it when the connection ends, a replica's crash included."""
        import psycopg

        key = f"rearag-thread:{thread_id}"
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise postgres_unusable(self.url, exc) from None
        with conn:
            deadline = time.monotonic() + wait_s
            try_lock = "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))"
            while not conn.execute(try_lock, (key,)).fetchone()[0]:
                if time.monotonic() >= deadline:
                    raise _busy(thread_id, wait_s)
                time.sleep(_POLL_S)
            try:
                yield
            finally:
                if not conn.closed:
                    conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))

    def _run(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        with self.saver._cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def latest_id(self, thread_id: str) -> str | None:
        [row] = self._run(
            "SELECT MAX(checkpoint_id) AS id FROM checkpoints WHERE thread_id = %s", (thread_id,)
        )
        return row["id"]

    def undo(self, thread_id: str, before: str | None) -> None:
        for table in ("checkpoints", "checkpoint_writes"):
            self._run(
                f"DELETE FROM {table} WHERE thread_id = %s AND checkpoint_id > %s",
                (thread_id, before or ""),
            )
        # Channel values the removed checkpoints stored and no kept one refers to.
        self._run(
            "DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS ("
            "SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id "
            "AND c.checkpoint_ns = b.checkpoint_ns "
            "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)",
            (thread_id,),
        )

    def keep_latest(self, thread_id: str | None = None) -> int:
        before = self.checkpoint_counts(thread_id)
        if not before:
            return 0
        self.saver.prune(list(before), strategy="keep_latest")
        after = self.checkpoint_counts(thread_id)
        return sum(n - after.get(t, 0) for t, n in before.items())

    def checkpoint_counts(self, thread_id: str | None = None) -> dict[str, int]:
        only, params = ("WHERE thread_id = %s", (thread_id,)) if thread_id is not None else ("", ())
        rows = self._run(
            f"SELECT thread_id, COUNT(*) AS n FROM checkpoints {only} GROUP BY thread_id", params
        )
        return {row["thread_id"]: row["n"] for row in rows}

    def compact(self) -> None:
        self._run(f"VACUUM {', '.join(_TABLES)}")

    def size(self) -> int:
        [row] = self._run(
            "SELECT COALESCE(SUM(pg_total_relation_size(t::regclass)), 0) AS n "
            "FROM unnest(%s::text[]) AS t",
            (list(_TABLES),),
        )
        return int(row["n"])

    def close(self) -> None:
        self.saver.conn.close()
