"""A collection: Chroma (embedded or a server) holding the chunks and vectors, plus the BM25
index over the same chunks, kept in sync.

Every change to the chunks is logged for the BM25 index (see `BM25Index`), which is rebuilt
from its saved tokens once per batch of changes: by the ingest when it changed a tenth of the
chunks or more, else by the next lexical search. A marker left by a change that died before it
was logged makes the next rebuild read every chunk back from Chroma instead.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection

from rearag.core.config import Settings
from rearag.core.errors import BackendError, ConfigError, InvalidInputError, NotFoundError
from rearag.tools.bm25 import BM25Index
from rearag.tools.embedder import RearagEmbeddingFunction, identity_settings


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
    path = settings.home / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path))


def check_collection_name(name: str) -> None:
    if not _NAME.match(name) or ".." in name:
        raise InvalidInputError(
            f"invalid collection name {name!r}: use 3-512 characters from letters, digits, "
            "'.', '_' and '-', starting and ending with a letter or digit"
        )


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
        self.collection = self._open(create)
        self._dimension: int | None = None  # of the stored vectors, read on first need
        self.bm25 = BM25Index(self._lexical_folder())

    def _open(self, create: bool) -> Collection:
        existing = list_collections(self.client)
        if self.name not in existing:
            if not create:
                hint = f" (existing: {', '.join(existing)})" if existing else ""
                raise NotFoundError(
                    f"collection {self.name!r} does not exist: create it with "
                    f"`rearag ingest PATH --collection {self.name}`{hint}"
                )
            return self.client.create_collection(
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
        return self.settings.home / "bm25" / where / self.name

    @property
    def _stale_marker(self) -> Path:
        """Exists while a change to the chunks may be missing from the BM25 log."""
        return self.bm25.folder.with_name(self.name + ".stale")

    def count(self) -> int:
        return self.collection.count()

    def ids_for_source(self, source: str) -> set[str]:
        return set(self.collection.get(where={"source": source}, include=[])["ids"])

    def add(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], embeddings: Any
    ) -> None:
        self._check_dimension(len(embeddings[0]) if len(embeddings) else None)
        with _ctrl_c_after(), self._changing():  # a held Ctrl-C is raised once it is logged
            self.collection.add(
                ids=ids, documents=texts, metadatas=metadatas, embeddings=embeddings
            )
            self.bm25.log_add(ids, texts)

    def delete(self, ids: list[str]) -> None:
        if not ids:
            return
        batch = self.client.get_max_batch_size()
        with self._changing():
            for i in range(0, len(ids), batch):
                with _ctrl_c_after():
                    self.collection.delete(ids=ids[i : i + batch])
            self.bm25.log_delete(ids)

    def sync_lexical(self) -> None:
        """After a batch of changes: rebuild the BM25 index now only if they changed a tenth of
        its chunks or more. Smaller batches wait for the next lexical search, so repeated small
        ingests cost what they add, not the collection's size: each rebuild (linear in the
        collection) is paid for by at least a tenth of the collection's chunks changing."""
        if self._stale_marker.exists() or self.bm25.pending() >= max(1, self.bm25.size() // 10):
            self._refresh_lexical()

    def _refresh_lexical(self) -> None:
        """Bring the BM25 index up to date: from its saved tokens and the log where they account
        for every chunk; else (a change died before it was logged, an index saved by an older
        rearag, a change lost to a concurrent rebuild) from every chunk's text in Chroma."""
        unsure = self._stale_marker.exists() or not self.bm25.exists()
        if not unsure and self.bm25.pending():
            unsure = not self.bm25.apply_log()
        if unsure or self.bm25.size() != self.count():
            data = self._get_all(include=["documents"])
            self.bm25.rebuild(data["ids"], data["documents"])
            self._stale_marker.unlink(missing_ok=True)

    def dense(self, query_embedding: Any, k: int) -> list[tuple[str, float]]:
        k = min(k, self.count())
        if k == 0:
            return []
        self._check_dimension(len(query_embedding))
        res = self.collection.query(
            query_embeddings=[query_embedding], n_results=k, include=["distances"]
        )
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

    def lexical(self, query: str, k: int) -> list[tuple[str, float]]:
        self._refresh_lexical()
        return self.bm25.search(query, k)

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
        """Delete the collection and its BM25 index."""
        self.client.delete_collection(self.name)
        self.bm25.clear()
        self._stale_marker.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _changing(self) -> Iterator[None]:
        """Around a change to the chunks and its BM25 log entry. A failure or a kill inside
        leaves the marker; a marker an earlier failure left stays until a rebuild from Chroma."""
        left_before = self._stale_marker.exists()
        self._stale_marker.parent.mkdir(parents=True, exist_ok=True)
        self._stale_marker.touch()
        yield
        if not left_before:
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


def list_collections(client: ClientAPI) -> list[str]:
    return sorted(c.name for c in client.list_collections())


def collection_counts(settings: Settings) -> dict[str, int]:
    """Every collection of the configured store with its number of chunks."""
    client = make_client(settings)
    return {name: client.get_collection(name).count() for name in list_collections(client)}
