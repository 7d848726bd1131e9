"""What a server shares with other replicas and what it keeps to itself: named in its start
log line and checked by /health, so an operator sees which parts another host must reach."""

from __future__ import annotations

import http.client
import urllib.request
from typing import Literal

from pydantic import BaseModel

from rearag.agent.thread_store import checkpoints_path, is_postgres, postgres_where
from rearag.core.config import Settings

_PROBE_S = 2  # seconds: a /health probe must answer quickly, reachable or not


class Part(BaseModel):
    """One place the server keeps something."""

    holds: Literal["conversations", "chunks and vectors"]
    where: str
    shared: bool  # reachable by other hosts (a database or server), not a local file


def parts(settings: Settings) -> list[Part]:
    store, where = settings.store, settings.agent.checkpointer
    conversations = (
        Part(holds="conversations", where=postgres_where(where), shared=True)
        if is_postgres(where)
        else Part(holds="conversations", where=str(checkpoints_path(settings)), shared=False)
    )
    chunks = (
        Part(
            holds="chunks and vectors",
            where=f"chroma http://{store.chroma_host}:{store.chroma_port}",
            shared=True,
        )
        if store.chroma_host
        else Part(holds="chunks and vectors", where=str(settings.home / "chroma"), shared=False)
    )
    return [conversations, chunks]


def describe(settings: Settings) -> str:
    """For the start log: the shared parts, then what stays with this replica."""
    kept = f"{settings.home} (BM25 index, window cache, converted models, thread locks)"
    shared = [f"{p.holds} in {p.where}" for p in parts(settings) if p.shared]
    local = [f"{p.holds} in {p.where}" for p in parts(settings) if not p.shared]
    return (
        f"shared: {', '.join(shared) or 'nothing (one host)'}; "
        f"this replica's own: {', '.join([*local, kept])}"
    )


class PartHealth(BaseModel):
    """A part as /health shows it: without where it is, since /health needs no key."""

    holds: Literal["conversations", "chunks and vectors"]
    shared: bool
    reachable: bool


def check(settings: Settings) -> list[PartHealth]:
    """Each part with whether it answers now (a local file always does)."""
    return [
        PartHealth(holds=p.holds, shared=p.shared, reachable=_reachable(p, settings))
        for p in parts(settings)
    ]


def _reachable(part: Part, settings: Settings) -> bool:
    if not part.shared:
        return True
    if part.holds == "conversations":
        import psycopg

        try:
            with psycopg.connect(settings.agent.checkpointer, connect_timeout=_PROBE_S) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True
    store = settings.store
    url = f"http://{store.chroma_host}:{store.chroma_port}/api/v2/heartbeat"
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_S):
            return True
    except (OSError, http.client.HTTPException):  # no server, or something else on the port
        return False
