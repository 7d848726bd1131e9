"""A collection: Chroma (embedded or a server) holding the chunks and vectors, plus the BM25
index over the same chunks, kept in sync.

Every change to the chunks is logged for the BM25 index (see `BM25Index`), which is rebuilt
from its saved tokens once per batch of changes: by the ingest when it changed a tenth of the
chunks or more, else by the next lexical search. A marker left by a change that died before it
was logged makes the next rebuild read every chunk back from Chroma instead.

Several processes share a collection (`rearag ingest` while `rearag serve` runs): writers hold
a lock file beside the BM25 index exclusively, readers share it, and every write bumps a
generation number beside it. Each search reads that number (one small file) and, when another
Store wrote since, re-opens the collection and reloads the BM25 index; the embedded Chroma
loads a collection's vector index once per client and never sees another client's writes.

On a Chroma server, shared by replicas on several hosts, each $REARAG_HOME keeps its own BM25
index (Chroma's open-source server holds no sparse index), so the generation lives where every
replica sees it: a token in the collection's metadata, new at every write. The file beside the
BM25 index then holds the token its files account for; a search that finds another token
re-opens, and where the token is not one this host wrote, rebuilds BM25 from Chroma. The local
lock stays, for this host's files. Two hosts writing one collection within the same request's
time can hide one's token from the other's own BM25 until the next write (the count check
below still catches an added or deleted chunk).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import os
import re
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
from chromadb.api import ClientAPI, ServerAPI
from chromadb.api.client import Client
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings as ChromaSettings
from chromadb.config import System
from chromadb.errors import InternalError as ChromaInternal
from chromadb.errors import NotFoundError as ChromaNotFound
from chromadb.telemetry.product import ProductTelemetryClient

from rearag.core.config import Settings
from rearag.core.errors import (
    BackendError,
    ConfigError,
    DiskFull,
    InvalidInputError,
    NotFoundError,
)
from rearag.core.filters import Where
from rearag.tools.bm25 import BM25Index
from rearag.tools.embedder import RearagEmbeddingFunction, identity_settings
from rearag.tools.index_home import check_writable, index_home


@contextlib.contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C that arrives inside the block until the block ends. Chroma's embedded
    store catches BaseException while it updates its index, logs it and goes on, so a Ctrl-C
    during a write was lost and the ingest ran to its end (signals reach the main thread only)."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield  # Ctrl-C is not Python's KeyboardInterrupt here (ignored, or handled by others)
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]$")


def make_client(settings: Settings) -> ClientAPI:
    if settings.store.chroma_host:
        host, port = settings.store.chroma_host, settings.store.chroma_port
        try:
            return chromadb.HttpClient(host=host, port=port)
        except Exception as exc:  # chromadb raises plain ValueError/ConnectError variants
            raise BackendError(
                f"cannot reach the Chroma server at {host}:{port} ({exc.__class__.__name__}): "
                "start it with `chroma run --path DIR --port PORT`, or unset store.chroma_host "
                "to use the embedded store"
            ) from None
    path = index_home(settings.home) / "chroma"  # a read-only home's private copy
    path.mkdir(parents=True, exist_ok=True)
    return _own_embedded_client(path)


def _own_embedded_client(path: Path) -> ClientAPI:
    """An embedded client with a Chroma system of its own. `chromadb.PersistentClient` shares
    one system per path within a process, and a system loads each collection's vector index
    once: a new PersistentClient would still search the vectors as they were at that load,
    while a store re-opened on a system of its own loads them as now written (and the stale
    one is freed with its last collection). The same steps as chromadb's shared-system setup."""
    system = System(ChromaSettings(is_persistent=True, persist_directory=str(path)))
    system.instance(ProductTelemetryClient)
    system.instance(ServerAPI)
    system.start()
    return Client.from_system(system)


def check_collection_name(name: str) -> None:
    if not _NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 3-512 characters from letters, digits, "
            "'.', '_' and '-', starting and ending with a letter or digit"
        )


_GENERATION_KEY = "rearag_generation"  # in a server collection's metadata
# Room a write to the embedded store must leave: Chroma applies its log to the metadata segment
# (full-text index included) in one SQLite transaction, and a write that runs out of room
# midway leaves a log it cannot apply, so every later read fails until space is freed. So a
# write is refused unless HEADROOM times its text and vectors, plus a floor, are free.
_HEADROOM = 8
_MATCHED_KEPT = 64  # filters whose matching ids a store remembers
_FLOOR_BYTES = 1 << 20


class Store:
    """One named collection: chunks with metadata in Chroma, vectors, and the BM25 index."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        *,
        create: bool = False,
        client: ClientAPI | None = None,
    ) -> None:
        check_collection_name(name)
        self.name = name
        self.settings = settings
        self.client = client or make_client(settings)
        self.embedding = RearagEmbeddingFunction(settings.embedder, settings.models_dir)
        self.bm25 = BM25Index(self._lexical_folder())
        self.bm25.folder.parent.mkdir(parents=True, exist_ok=True)
        # Read before opening: a write landing in between makes the next search re-open.
        self._generation = self._read_generation()
        self._reopening = threading.Lock()  # the server's worker threads share this Store
        self.collection = self._open(create)
        self._dimension: int | None = None  # of the stored vectors, read on first need
        # (generation, id -> metadata) of every chunk, read by the first filtered search.
        self._metadata: tuple[str, dict[str, dict[str, Any]]] | None = None
        self._matched: dict[str, set[str]] = {}  # filter (as JSON) -> the ids it keeps

    def _open(self, create: bool) -> Collection:
        existing = list_collections(self.client)
        if self.name not in existing:
            if not create:
                hint = f" (existing: {', '.join(existing)})" if existing else ""
                raise NotFoundError(
                    f"collection {self.name!r} does not exist: create it with "
                    f"`rearag ingest PATH --collection {self.name}`{hint}"
                )
            self._check_writable()
            # Or get: two first ingests at once both get here; the loser's is checked below.
            self.client.get_or_create_collection(
                self.name,
                embedding_function=self.embedding,
                metadata={"rearag_embedder": self.embedding.identity, "hnsw:space": "cosine"},
            )
        built_with = (self.client.get_collection(self.name).metadata or {}).get("rearag_embedder")
        if built_with and built_with != self.embedding.identity:
            raise ConfigError(
                f"collection {self.name!r} was built with embedder {built_with!r} but "
                f"{self.embedding.identity!r} is configured: set {identity_settings(built_with)} "
                "or ingest into a new collection"
            )
        return self.client.get_collection(self.name, embedding_function=self.embedding)

    def _lexical_folder(self) -> Path:
        store = self.settings.store
        where = f"{store.chroma_host}_{store.chroma_port}" if store.chroma_host else "local"
        return index_home(self.settings.home) / "bm25" / where / self.name

    def _check_room(self, texts: list[str], embeddings: Any) -> None:
        """DiskFull before a write the embedded store may not have room to finish (a Chroma
        server's disk is the server's)."""
        if self._shared:
            return
        where = index_home(self.settings.home)
        size = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
        size += 4 * sum(len(vector) for vector in embeddings)  # float32
        need, free = _FLOOR_BYTES + _HEADROOM * size, shutil.disk_usage(where).free
        if free < need:
            raise DiskFull(
                f"no space left on {where}: {free / 1e6:.1f} MB free, storing {len(texts)} more "
                f"chunks needs about {need / 1e6:.1f} MB. What is stored stays searchable; free "
                "some space and run the ingest again: it goes on where it stopped",
                where,
            )

    @contextlib.contextmanager
    def _disk_errors(self) -> Iterator[None]:
        """A full or read-only disk met while changing the index as one line naming it."""
        where = index_home(self.settings.home)
        try:
            yield
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            raise DiskFull(_no_space(where), where) from None
        except ChromaInternal as exc:
            if self._shared or not _DISK_TROUBLE.search(str(exc)):
                raise
            raise DiskFull(_no_space(where), where) from None

    def _check_writable(self) -> None:
        """A change to the chunks needs a writable home (a read-only one is searched from a
        private copy, whose changes would be lost)."""
        check_writable(self.settings.home, f"changing collection {self.name!r}")

    @property
    def _stale_marker(self) -> Path:
        """Exists while a change to the chunks may be missing from the BM25 log."""
        return self.bm25.folder.with_name(self.name + ".stale")

    @property
    def _generation_file(self) -> Path:
        return self.bm25.folder.with_name(self.name + ".generation")

    @contextlib.contextmanager
    def _lock(self, shared: bool = False) -> Iterator[None]:
        """The collection's lock across processes: exclusive for a change, shared for a read,
        so a reader never loads index files a writer is saving, nor a log it is appending to.
        Each use opens the file anew: flock locks of separate opens exclude each other, so
        threads of one process take turns too (never nest two uses in one thread)."""
        with self.bm25.folder.with_name(self.name + ".lock").open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield

    @property
    def _shared(self) -> bool:
        """Whether the collection is on a Chroma server, which other hosts may write."""
        return bool(self.settings.store.chroma_host)

    def _read_generation(self) -> str:
        """The collection's generation: on a server, the token in its metadata ("dropped" when
        it is gone); else the number in the file beside the BM25 index."""
        if self._shared:
            try:
                metadata = self.client.get_collection(self.name).metadata or {}
            except ChromaNotFound:
                return "dropped"
            return str(metadata.get(_GENERATION_KEY, ""))
        return self._local_generation()

    def _local_generation(self) -> str:
        try:
            return self._generation_file.read_text()
        except FileNotFoundError:
            return ""  # no Store has changed the collection since generations were kept

    def _write_local_generation(self, generation: str) -> None:
        """Written whole by a rename, so a reader sees the old value or the new one."""
        staging = self._generation_file.with_name(self._generation_file.name + ".new")
        staging.write_text(generation)
        os.replace(staging, self._generation_file)

    def _bump_generation(self, *, ours_only: bool = True) -> None:
        """Called holding the lock exclusively, after a change. On a server: a new token in
        the collection's metadata (modify replaces it whole: the rest is kept), recorded in
        the local file when this host's BM25 log holds every change up to it (`ours_only`)."""
        if not self._shared:
            current = self._local_generation()
            self._generation = str(int(current) + 1 if current.isdigit() else 1)
            self._write_local_generation(self._generation)
            return
        self._generation = uuid.uuid4().hex
        try:
            collection = self.client.get_collection(self.name)
        except ChromaNotFound:  # dropped: the other replicas find it gone
            self._generation = "dropped"
            self._generation_file.unlink(missing_ok=True)
            return
        kept = {k: v for k, v in (collection.metadata or {}).items() if not k.startswith("hnsw:")}
        collection.modify(metadata={**kept, _GENERATION_KEY: self._generation})
        if ours_only:
            self._write_local_generation(self._generation)

    def _catch_up(self) -> None:
        """Called holding the lock: when a Store (of any process) changed the collection since
        this one last looked, re-open it and forget the loaded BM25 index; on a server, where
        the change came from another host, the local BM25 index is marked for a rebuild from
        Chroma."""
        generation = self._read_generation()
        if generation == self._generation:
            return
        with self._reopening:
            if generation == self._generation:  # another thread of this process did it
                return
            if not self._shared:  # a server's own index is always current
                self.client = make_client(self.settings)
            self.collection = self._open(create=False)  # also finds a dropped and re-made one
            if self._shared and generation != self._local_generation():
                self._stale_marker.touch()
            self.bm25 = BM25Index(self._lexical_folder())
            self._dimension = None
            self._generation = generation

    def count(self) -> int:
        return self.collection.count()

    def ids_for_source(self, source: str) -> set[str]:
        return set(self.collection.get(where={"source": source}, include=[])["ids"])

    def sources(self) -> dict[str, set[str]]:
        """Every stored file (its `source`) with the ids of its chunks. Chroma filters have no
        path prefix, so this reads every chunk's metadata, page by page."""
        with self._lock(shared=True):
            self._catch_up()
            got = self._get_all(include=["metadatas"])
        ids_of: dict[str, set[str]] = {}
        for chunk_id, meta in zip(got["ids"], got["metadatas"] or [], strict=False):
            if source := (meta or {}).get("source"):  # chunks added by the API may have none
                ids_of.setdefault(source, set()).add(chunk_id)
        return ids_of

    def add(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], embeddings: Any
    ) -> int:
        """Store the chunks whose ids the collection does not hold yet, and return how many.
        Decided under the lock, so two ingests of the same files each count what they wrote
        (Chroma would silently ignore an id it has)."""
        if not ids:
            return 0
        self._check_writable()
        self._check_room(texts, embeddings)
        with self._disk_errors(), self._lock():
            self._catch_up()
            self._check_dimension(len(embeddings[0]) if len(embeddings) else None)
            held = set(self.collection.get(ids=ids, include=[])["ids"])
            new = [n for n, chunk_id in enumerate(ids) if chunk_id not in held]
            if not new:
                return 0
            with _ctrl_c_after(), self._changing():  # a held Ctrl-C is raised once it is logged
                self.collection.add(
                    ids=[ids[n] for n in new],
                    documents=[texts[n] for n in new],
                    metadatas=[metadatas[n] for n in new],
                    embeddings=[embeddings[n] for n in new],
                )
                self.bm25.log_add([ids[n] for n in new], [texts[n] for n in new])
        return len(new)

    def delete(self, ids: list[str]) -> int:
        """Delete the chunks the collection holds of `ids`, and return how many: decided under
        the lock, as `add` does, so two ingests of the same edited file each count their own."""
        if not ids:
            return 0
        self._check_writable()
        with self._disk_errors(), self._lock():
            self._catch_up()
            batch = self.client.get_max_batch_size()
            held = [
                chunk_id
                for i in range(0, len(ids), batch)
                for chunk_id in self.collection.get(ids=ids[i : i + batch], include=[])["ids"]
            ]
            if not held:
                return 0
            with self._changing():
                for i in range(0, len(held), batch):
                    with _ctrl_c_after():
                        self.collection.delete(ids=held[i : i + batch])
                self.bm25.log_delete(held)
        return len(held)

    def sync_lexical(self) -> None:
        """After a batch of changes: rebuild the BM25 index now only if they changed a tenth of
        its chunks or more. Smaller batches wait for the next lexical search, so repeated small
        ingests cost what they add, not the collection's size: each rebuild (linear in the
        collection) is paid for by at least a tenth of the collection's chunks changing."""
        with self._disk_errors(), self._lock():
            self._catch_up()
            if self._stale_marker.exists() or self.bm25.pending() >= max(1, self.bm25.size() // 10):
                self._refresh_lexical()

    def _lexical_current(self) -> bool:
        """Whether the BM25 index accounts for every chunk (called holding the lock)."""
        return (
            not self._stale_marker.exists()
            and self.bm25.exists()
            and not self.bm25.pending()
            and self.bm25.size() == self.count()
        )

    def _refresh_lexical(self) -> None:
        """Bring the BM25 index up to date, holding the lock exclusively: from its saved tokens
        and the log where they account for every chunk; else (a change died before it was
        logged, an index saved by an older rearag) from every chunk's text in Chroma."""
        unsure = self._stale_marker.exists() or not self.bm25.exists()
        if not unsure and self.bm25.pending():
            unsure = not self.bm25.apply_log()
        if unsure or self.bm25.size() != self.count():
            # On a server: the token read first, so a write during the read shows as newer.
            generation = self._read_generation() if self._shared else None
            data = self._get_all(include=["documents"])
            self.bm25.rebuild(data["ids"], data["documents"])
            if generation is not None:
                self._write_local_generation(generation)
            self._stale_marker.unlink(missing_ok=True)

    def _matching(self, where: Where | None) -> set[str] | None:
        """The ids of the chunks whose metadata `where` keeps (None: no filter), called holding
        the lock, so the search that follows sees the same chunks (a chunk deleted in between
        made Chroma's query fail). Every chunk's metadata is read once per change of the
        collection (a dict in memory, refreshed when the generation moves), and the ids a
        filter keeps are remembered until then (a tenant's filter is asked again and again)."""
        if where is None:
            return None
        metadata = self._metadata
        if metadata is None or metadata[0] != self._generation:
            got = self._get_all(include=["metadatas"])
            meta = dict(zip(got["ids"], (m or {} for m in got["metadatas"]), strict=True))
            metadata = self._metadata = (self._generation, meta)
            self._matched = {}
        key = f"{metadata[0]}\x00{json.dumps(where.spec, sort_keys=True)}"  # this generation's
        found = self._matched.get(key)
        if found is None:
            found = {chunk_id for chunk_id, meta in metadata[1].items() if where.matches(meta)}
            with self._reopening:  # the server's worker threads share this Store
                if len(self._matched) >= _MATCHED_KEPT:
                    self._matched.pop(next(iter(self._matched)))  # the oldest filter goes
                self._matched[key] = found
        return found

    def dense(
        self, query_embedding: Any, k: int, where: Where | None = None
    ) -> list[tuple[str, float]]:
        """The `k` nearest chunks; with `where`, among those whose metadata it keeps."""
        with self._lock(shared=True):
            self._catch_up()
            ids = self._matching(where)
            k = min(k, self.count() if ids is None else len(ids))
            if k == 0:
                return []
            self._check_dimension(len(query_embedding))
            query = functools.partial(
                self.collection.query,
                query_embeddings=[query_embedding],
                n_results=k,
                include=["distances"],
            )
            try:
                res = query(ids=None if ids is None else sorted(ids))
            except ChromaInternal as exc:
                # Another host deleted a chunk the filter kept, unseen by our token yet.
                if ids is None or "finding id" not in str(exc):
                    raise
                self._metadata = None
                ids = self._matching(where) or set()
                res = query(ids=sorted(ids), n_results=min(k, len(ids))) if ids else None
        if res is None:
            return []
        return [(i, 1.0 - d) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)]

    def _check_dimension(self, size: int | None) -> None:
        """A server can answer with vectors of another size than the collection holds (another
        model behind the same name): one clear line instead of Chroma's error."""
        if size is None or self.count() == 0:
            return
        if self._dimension is None:
            [vector] = self.collection.get(limit=1, include=["embeddings"])["embeddings"]
            self._dimension = len(vector)
        if size != self._dimension:
            raise ConfigError(
                f"embedder {self.embedding.identity!r} gives vectors of size {size} but "
                f"collection {self.name!r} holds vectors of size {self._dimension}: configure "
                "the model it was built with, or ingest into a new collection"
            )

    def lexical(self, query: str, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """The `k` best chunks by BM25; with `where`, among those whose metadata it keeps."""
        # Searched outside the lock: a loaded index is an immutable snapshot.
        with self._lock(shared=True):
            self._catch_up()
            index, current, ids = self.bm25, self._lexical_current(), self._matching(where)
        if not current:
            with self._disk_errors(), self._lock():
                self._catch_up()
                self._refresh_lexical()
                index, ids = self.bm25, self._matching(where)
        return index.search(query, k, ids)

    def fetch(self, ids: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
        """id -> (chunk text, metadata) for the given ids."""
        if not ids:
            return {}
        res = self.collection.get(ids=ids, include=["documents", "metadatas"])
        return {
            i: (doc, dict(meta or {}))
            for i, doc, meta in zip(res["ids"], res["documents"], res["metadatas"], strict=True)
        }

    def drop(self) -> None:
        """Delete the collection and its BM25 index (the generation number stays, bumped, so
        a server still holding the collection notices)."""
        self._check_writable()
        with self._lock():
            self.client.delete_collection(self.name)
            self.bm25.clear()
            self._stale_marker.unlink(missing_ok=True)
            self._bump_generation()

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Around a change to the chunks and its BM25 log entry, holding the lock exclusively.
        A failure or a kill inside leaves the marker; a marker an earlier failure left stays
        until a rebuild from Chroma. The generation is bumped even after a failure, which may
        have changed part of the collection. On a server, another host's token found before
        or during the change means this host's BM25 log misses a change: the marker stays."""
        before = self._read_generation() if self._shared else ""
        left_before = self._stale_marker.exists()
        self._stale_marker.touch()
        try:
            yield
        finally:
            ours_only = not self._shared or (
                before == self._local_generation() and self._read_generation() == before
            )
            self._bump_generation(ours_only=ours_only)
        if not left_before and ours_only:
            self._stale_marker.unlink(missing_ok=True)

    def _get_all(self, include: list[str]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {"ids": [], **{key: [] for key in include}}
        batch, total = self.client.get_max_batch_size(), self.count()
        for offset in range(0, total, batch):
            page = self.collection.get(include=include, limit=batch, offset=offset)
            out["ids"] += page["ids"]
            for key in include:
                out[key] += page[key]
        return out


class NewCollection:
    """A collection that does not exist yet, as a dry run sees it: the name, settings and
    embedder (whose tokenizer cuts the chunks) it would be created with, and no chunks.
    Creating the collection just to compare against it would be a change."""

    def __init__(self, settings: Settings, name: str) -> None:
        check_collection_name(name)
        self.name = name
        self.settings = settings
        self.embedding = RearagEmbeddingFunction(settings.embedder, settings.models_dir)

    def count(self) -> int:
        return 0

    def ids_for_source(self, source: str) -> set[str]:
        return set()

    def sources(self) -> dict[str, set[str]]:
        return {}


# What embedded Chroma says when its disk filled up (its log could not be applied, SQLite).
_DISK_TROUBLE = re.compile(r"disk is full|No space left|apply logs|compaction", re.I)


def _no_space(where: Path) -> str:
    free = shutil.disk_usage(where).free / 1e6
    return (
        f"no space left on {where} ({free:.1f} MB free): the index could not be written. Free "
        "some space and run the ingest again: it goes on where it stopped"
    )


def list_collections(client: ClientAPI) -> list[str]:
    return sorted(c.name for c in client.list_collections())


def collection_counts(settings: Settings) -> dict[str, int]:
    """Every collection of the configured store with its number of chunks."""
    client = make_client(settings)
    return {name: client.get_collection(name).count() for name in list_collections(client)}
