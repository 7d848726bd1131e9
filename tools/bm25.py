"""A BM25 index (bm25s) over a collection's chunks, persisted in a folder beside it.

bm25s indexes are not incremental, so the index is rebuilt from the collection's chunks
whenever the collection changes; a rebuild of 20k chunks takes a few seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bm25s
import Stemmer

_STEMMER = Stemmer.Stemmer("english")


def _tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )


class BM25Index:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._retriever: bm25s.BM25 | None = None
        self._ids: list[str] = []

    @property
    def ids_file(self) -> Path:
        return self.folder / "ids.json"

    def exists(self) -> bool:
        return self.ids_file.is_file()

    def size(self) -> int:
        self._load()
        return len(self._ids)

    def rebuild(self, ids: list[str], texts: list[str]) -> None:
        """Index `texts` under `ids` and replace the saved index in one rename."""
        staging = self.folder.with_name(self.folder.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if ids:
            retriever = bm25s.BM25()
            retriever.index(_tokenize(texts), show_progress=False)
            retriever.save(str(staging))
        else:
            retriever = None
        (staging / "ids.json").write_text(json.dumps(ids))
        old = self.folder.with_name(self.folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        self._retriever, self._ids = retriever, list(ids)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) pairs, best first; empty when no query term is indexed."""
        self._load()
        if self._retriever is None or not self._ids:
            return []
        tokens = _tokenize([query])
        if not tokens[0]:
            return []
        docs, scores = self._retriever.retrieve(
            tokens, k=min(k, len(self._ids)), show_progress=False, return_as="tuple"
        )
        return [
            (self._ids[int(i)], float(s)) for i, s in zip(docs[0], scores[0], strict=True) if s > 0
        ]

    def _load(self) -> None:
        if self._retriever is not None or not self.exists() or self._ids:
            return
        self._ids = json.loads(self.ids_file.read_text())
        if self._ids:
            self._retriever = bm25s.BM25.load(str(self.folder))
