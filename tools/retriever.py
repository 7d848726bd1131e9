"""Search over a collection: dense (Chroma), lexical (BM25) or hybrid (reciprocal rank fusion)."""

from __future__ import annotations

from typing import Any

from rearag.core.config import SearchMode, Settings, load_settings
from rearag.core.errors import InvalidInputError
from rearag.core.filters import Where
from rearag.core.types import Passage
from rearag.tools.store import Store

MAX_QUERY_CHARS = 10_000


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = 60) -> list[tuple[str, float]]:
    """Fuse ranked id lists: score(id) = sum over lists of 1 / (k + rank), rank from 1."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: kv[1], reverse=True)


class Retriever:
    """`Retriever("docs").search("query", k=10, mode="hybrid") -> list[Passage]`.

    Without `settings`, the defaults are read with `load_settings()` (./rearag.toml,
    REARAG_* variables)."""

    def __init__(
        self,
        collection: str | None = None,
        settings: Settings | None = None,
        store: Store | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.store = store or Store(self.settings, collection or self.settings.collection)

    def search(
        self,
        query: str,
        k: int | None = None,
        mode: SearchMode | str | None = None,
        where: Where | dict[str, Any] | str | None = None,
    ) -> list[Passage]:
        """The `k` best chunks, best first, each with its metadata (source, title, …); with
        `where` (rearag.core.filters), only chunks whose metadata it keeps."""
        cfg = self.settings.retriever
        k = cfg.k if k is None else k
        if k < 1:
            raise InvalidInputError(f"k must be at least 1, got {k}")
        query = query.strip()
        if not query:
            raise InvalidInputError("the query is empty: give some words to search for")
        # The embedder reads 256 tokens at most and BM25 gains nothing from a book-length query.
        query = query[:MAX_QUERY_CHARS]
        scored = self.ranked_ids(query, k, mode or cfg.mode, where)[:k]
        found = self.store.fetch([i for i, _ in scored])
        return [
            Passage(id=i, score=s, text=found[i][0], metadata=found[i][1])
            for i, s in scored
            if i in found
        ]

    def ranked_ids(
        self,
        query: str,
        k: int,
        mode: SearchMode | str,
        where: Where | dict[str, Any] | str | None = None,
    ) -> list[tuple[str, float]]:
        """(chunk id, score) best first, without fetching texts: what evaluation needs."""
        mode = SearchMode.of(mode)
        where = where if isinstance(where, Where) or where is None else Where.parse(where)
        depth = max(k, self.settings.retriever.candidates)
        # The filter picks the chunks first: both searches rank only those.
        if mode == SearchMode.bm25:
            return self.store.lexical(query, k, where)
        dense = self.store.dense(
            self.store.embedding.encode([query])[0],
            depth if mode == SearchMode.hybrid else k,
            where,
        )
        if mode == SearchMode.dense:
            return dense
        lexical = self.store.lexical(query, depth, where)
        fused = reciprocal_rank_fusion(
            [[i for i, _ in dense], [i for i, _ in lexical]], k=self.settings.retriever.rrf_k
        )
        return fused[:k]
