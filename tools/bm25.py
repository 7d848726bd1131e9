"""A BM25 index (bm25s) over a collection's chunks, persisted in a folder beside it.

bm25s indexes are not incremental: every score depends on the whole corpus (document
frequencies, average length), so any change means a rebuild. What keeps that cheap is that the
rebuild never goes back to Chroma: the folder keeps every chunk's tokens, and each change to
the chunks appends its ids (and new tokens) to a pending log beside the folder. A rebuild
replays the log over the saved tokens and indexes the same token lists, in the same order, as
a rebuild from the chunk texts would, so the results are identical.

The loaded index is swapped in whole, never changed in place: a server thread searching it while
another reloads or rebuilds it keeps a consistent (ids, model) pair.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_STEMMER = Stemmer.Stemmer("english")


def _tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(
        texts, stopwords="en", stemmer=_STEMMER, return_ids=False, show_progress=False
    )


class BM25Index:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        # (model, chunk ids in its order) once loaded or built; no model when there are no ids.
        self._index: tuple[bm25s.BM25 | None, list[str]] | None = None

    @property
    def ids_file(self) -> Path:
        return self.folder / "ids.json"

    @property
    def tokens_file(self) -> Path:
        return self.folder / "tokens.json"

    @property
    def log_file(self) -> Path:
        # Beside the folder, not in it: a rebuild replaces the folder in one rename.
        return self.folder.with_name(self.folder.name + ".pending.jsonl")

    def exists(self) -> bool:
        return self.ids_file.is_file()

    def size(self) -> int:
        return len(self.ids())

    def ids(self) -> list[str]:
        """The indexed chunk ids, in index order (ties in scores break by it)."""
        return self._load()[1]

    def log_add(self, ids: list[str], texts: list[str]) -> None:
        """Record chunks just added to the collection; indexed by the next `apply_log`."""
        self._append({"add": ids, "tokens": _tokenize(texts)})

    def log_delete(self, ids: list[str]) -> None:
        self._append({"delete": ids})

    def pending(self) -> int:
        """How many chunk changes are logged and not yet indexed."""
        if not self.log_file.is_file():
            return 0
        records = map(json.loads, self.log_file.read_text().splitlines())
        return sum(len(rec.get("add", [])) + len(rec.get("delete", [])) for rec in records)

    def apply_log(self) -> bool:
        """Rebuild from the saved tokens and the pending log; False (and nothing done) when an
        index saved without its tokens (an older rearag) leaves only a rebuild from the texts."""
        if not self.tokens_file.is_file():
            return False
        ids = json.loads(self.ids_file.read_text())
        tokens = dict(zip(ids, json.loads(self.tokens_file.read_text()), strict=True))
        records = self.log_file.read_text().splitlines() if self.log_file.is_file() else []
        for rec in map(json.loads, records):
            for chunk_id in rec.get("delete", []):
                tokens.pop(chunk_id, None)
            for chunk_id, toks in zip(rec.get("add", []), rec.get("tokens", []), strict=True):
                # Chroma ignores the add of an id it has; a re-added id goes last, as in Chroma.
                tokens.setdefault(chunk_id, toks)
        self._write(list(tokens), list(tokens.values()))
        return True

    def rebuild(self, ids: list[str], texts: list[str]) -> None:
        """Index `texts` under `ids`, dropping any pending log."""
        self._write(ids, _tokenize(texts))

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)
        self._index = None

    def search(
        self, query: str, k: int, allowed: set[str] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk id, BM25 score) pairs, best first; empty when no query term is indexed. With
        `allowed`, only those chunks score (the others are masked out before the top k)."""
        retriever, ids = self._load()
        tokens = _tokenize([query])
        if retriever is None or not tokens[0] or allowed == set():
            return []
        mask = None
        if allowed is not None:
            mask = np.fromiter((i in allowed for i in ids), dtype=np.float32, count=len(ids))
        docs, scores = retriever.retrieve(
            tokens, k=min(k, len(ids)), show_progress=False, return_as="tuple", weight_mask=mask
        )
        return [(ids[int(i)], float(s)) for i, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def _append(self, record: dict[str, list]) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a") as log:
            log.write(json.dumps(record) + "\n")

    def _write(self, ids: list[str], tokens: list[list[str]]) -> None:
        """Index `tokens` under `ids` and replace the saved index; the pending log is then
        indexed. The store holds its collection's lock around this, so no change is logged
        meanwhile and no reader loads the folder between the two renames."""
        staging = self.folder.with_name(self.folder.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if ids:
            retriever = bm25s.BM25()
            retriever.index(tokens, show_progress=False)
            retriever.save(str(staging))
        else:
            retriever = None
        (staging / "ids.json").write_text(json.dumps(ids))
        (staging / "tokens.json").write_text(json.dumps(tokens))
        old = self.folder.with_name(self.folder.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.folder.exists():
            self.folder.rename(old)
        staging.rename(self.folder)
        shutil.rmtree(old, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)
        self._index = retriever, list(ids)

    def _load(self) -> tuple[bm25s.BM25 | None, list[str]]:
        """The index as saved; no model and no ids while none is saved (not memorised then)."""
        if self._index is not None:
            return self._index
        if not self.exists():
            return None, []
        ids = json.loads(self.ids_file.read_text())
        self._index = (bm25s.BM25.load(str(self.folder)) if ids else None), ids
        return self._index
