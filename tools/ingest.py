"""Ingestion: files -> documents -> chunks -> vectors in Chroma, plus the BM25 index.

Idempotent by construction: a chunk's id hashes its document, position and text, so unchanged
chunks are recognised and never embedded again, and chunks a changed file no longer has are
deleted. New chunks are added before stale ones are deleted, so an interrupted run leaves a
usable collection and the next run completes it.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from tqdm import tqdm

from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.core.filters import key_problem
from rearag.core.progress import progress_bar
from rearag.core.text import describe
from rearag.tools.chunking import iter_chunks
from rearag.tools.loaders import SkipFile, SourceDoc, discover, load_file, source_name
from rearag.tools.store import NewCollection, Store


class FileProblem(BaseModel):
    path: str
    reason: str


class FileOutcome(BaseModel):
    """What an ingest did to one file's chunks (a dry run: would do). `chunks_added` counts
    those planned: another ingest of the same file at the same time may store some first."""

    path: str  # the file's source: its resolved path
    chunks_added: int = 0
    chunks_deleted: int = 0
    chunks_unchanged: int = 0

    @property
    def change(self) -> Literal["added", "changed", "unchanged"]:
        """`added`: the collection held none of the file's chunks before."""
        if not self.chunks_added and not self.chunks_deleted:
            return "unchanged"
        return "changed" if self.chunks_deleted or self.chunks_unchanged else "added"


class IngestReport(BaseModel):
    collection: str
    files: int = 0  # files that gave documents; every other file found is in `skipped`
    documents: int = 0
    chunks_added: int = 0
    chunks_deleted: int = 0
    chunks_unchanged: int = 0
    chunks_total: int = 0
    skipped: list[FileProblem] = []
    warnings: list[FileProblem] = []
    outcomes: list[FileOutcome] = []  # one per file in `files`, in the order read


class _Planned(BaseModel):
    id: str
    text: str
    metadata: dict[str, Any]


def chunk_id(doc: SourceDoc, start: int, text: str, pages: str = "", labels: str = "") -> str:
    # The pages are part of the key so that PDFs ingested before chunks had page numbers are
    # replaced by a re-run, not kept as unchanged; the user's metadata too, so that a re-run
    # with other `--meta` values replaces the chunks (and without any, ids stay as they were).
    key = "\x00".join((doc.source, doc.doc_id, str(start), text, pages))
    if labels:
        key += "\x00" + labels
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# The metadata rearag writes on every chunk: a user's field may not replace one.
RESERVED_KEYS = frozenset(
    {"source", "doc_id", "title", "chunk_index", "char_start", "char_end", "page", "page_end"}
    | {"path"}
)


def check_metadata(metadata: Mapping[str, Any]) -> None:
    """InvalidInputError for a field rearag writes itself or a value Chroma cannot keep."""
    for key, value in metadata.items():
        if key in RESERVED_KEYS:
            raise InvalidInputError(
                f"metadata {key!r}: rearag writes that field itself ("
                + ", ".join(sorted(RESERVED_KEYS))
                + "); choose another name"
            )
        problem = key_problem(key)
        if problem:
            raise InvalidInputError(f"metadata {key!r}: {problem}; choose another name")
        if not isinstance(value, str | int | float | bool):
            raise InvalidInputError(f"metadata {key!r}: give a text, number or boolean")


def page_span(page_starts: list[int], start: int, end: int) -> tuple[int, int]:
    """The first and last page (1-based) of the characters start:end."""
    return bisect_right(page_starts, start), bisect_right(page_starts, end - 1)


def plan_document(
    doc: SourceDoc, store: Store | NewCollection, metadata: Mapping[str, Any] | None = None
) -> list[_Planned]:
    """The chunks a document should have in the store, with their ids and metadata: rearag's
    own fields, the document's (a .jsonl record's) and `metadata` (`--meta`)."""
    cfg = store.settings.ingest
    user = {k: v for k, v in {**doc.metadata, **(metadata or {})}.items() if k not in RESERVED_KEYS}
    labels = json.dumps(user, sort_keys=True) if user else ""
    planned = []
    for chunk in iter_chunks(
        doc.text, store.embedding.tokenizer, cfg.chunk_tokens, cfg.chunk_overlap
    ):
        # A title line in front of each chunk gives the embedder and BM25 the document's topic;
        # offsets still point into the document text.
        first_line = chunk.text.split("\n", 1)[0]
        indexed = chunk.text if doc.title in first_line else f"{doc.title}\n{chunk.text}"
        meta: dict[str, Any] = {
            **user,
            "source": doc.source,
            "doc_id": doc.doc_id,
            "title": doc.title,
            "chunk_index": chunk.index,
            "char_start": chunk.start,
            "char_end": chunk.end,
        }
        pages = ""
        if doc.page_starts:  # a PDF: citations can say "p. 12"
            meta["page"], meta["page_end"] = page_span(doc.page_starts, chunk.start, chunk.end)
            pages = f"{meta['page']}-{meta['page_end']}"
        planned.append(
            _Planned(
                id=chunk_id(doc, chunk.start, chunk.text, pages, labels),
                text=indexed,
                metadata=meta,
            )
        )
    return planned


def ingest(
    paths: Iterable[Path],
    store: Store | NewCollection,
    *,
    dry_run: bool = False,
    progress: bool = True,
    on_problem: Callable[[FileProblem], None] | None = None,
    follow_links: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> IngestReport:
    """Ingest the files under `paths`. Links found in a folder whose target is outside it are
    skipped unless `follow_links`; `include` and `exclude` globs select files (see
    `loaders.Selection`). Chunks are embedded and stored as the files are read, so memory holds
    one file's and one write's chunks however large the folder, and an interrupted run keeps
    what it stored. `metadata` fields go on every chunk (filters read them). `progress` bars
    are drawn only on a terminal (`core.progress`). A `dry_run` reads, chunks and compares
    with the stored chunk ids as ever, but embeds and writes nothing: the report says what the
    ingest would do; `store` may then be a `NewCollection`, one that does not exist yet."""
    check_metadata(metadata or {})
    paths = list(paths)
    files, skipped = discover(paths, follow_links, include=include, exclude=exclude)
    roots = [path.resolve() for path in paths]
    report = IngestReport(collection=store.name)

    def problem(found: FileProblem, into: list[FileProblem]) -> None:
        into.append(found)
        if on_problem:
            with tqdm.external_write_mode():  # a line between the bars, not through them
                on_problem(found)

    for path, reason in skipped:
        problem(FileProblem(path=source_name(path), reason=reason), report.skipped)
    # Several embedder batches per Chroma write: fewer writes, same memory bound.
    step = store.settings.embedder.batch_size * 4
    pending: list[_Planned] = []
    to_delete: list[str] = []
    # Shown after a second of work: a run with nothing to embed prints no empty bar.
    with progress_bar(
        desc="embedding", unit="chunk", enabled=progress and not dry_run, delay=1
    ) as embedding:
        reading = progress_bar(
            files, desc="reading", unit="file", enabled=progress and len(files) > 1
        )
        for path in reading:
            source = source_name(path)
            try:
                loaded = load_file(path, int(store.settings.ingest.max_file_mb * 1e6))
                wanted = {
                    p.id: p for doc in loaded.docs for p in plan_document(doc, store, metadata)
                }
                for planned in wanted.values():
                    planned.metadata["path"] = shown_path(path, roots)
            except Exception as exc:  # one bad file must not end the ingest; Ctrl-C still does
                problem(FileProblem(path=source, reason=_skip_reason(exc)), report.skipped)
                continue
            if loaded.warning:
                problem(FileProblem(path=source, reason=loaded.warning), report.warnings)
            report.files += 1
            report.documents += len(loaded.docs)
            stored = store.ids_for_source(source)
            new = [p for i, p in wanted.items() if i not in stored]
            stale = sorted(stored - wanted.keys())
            outcome = FileOutcome(
                path=source,
                chunks_added=len(new),
                chunks_deleted=len(stale),
                chunks_unchanged=len(stored & wanted.keys()),
            )
            report.outcomes.append(outcome)
            report.chunks_unchanged += outcome.chunks_unchanged
            to_delete += stale
            if dry_run:
                report.chunks_added += len(new)
                continue
            pending += new
            while len(pending) >= step:
                report.chunks_added += _add(store, pending[:step], embedding)
                del pending[:step]
        report.chunks_added += _add(store, pending, embedding)
    report.skipped.sort(key=lambda problem: problem.path)  # one list by path, whatever the reason
    if dry_run:
        report.chunks_deleted = len(to_delete)
        report.chunks_total = store.count() + report.chunks_added - report.chunks_deleted
        return report
    # Stale chunks go last: an interrupted run leaves every file's old or new chunks findable.
    report.chunks_deleted = store.delete(to_delete)
    store.sync_lexical()
    report.chunks_total = store.count()
    return report


def shown_path(file: Path, roots: list[Path]) -> str:
    """The file's path from the folder named on the command line (`docs/guide/a.md` for
    `rearag ingest docs`; the name alone for a file named itself): what a server shows of
    its sources, without the machine's own layout."""
    for root in roots:
        if file.is_relative_to(root) and file != root:
            return source_name(Path(root.name) / file.relative_to(root))
    return source_name(Path(file.name))


def _skip_reason(exc: Exception) -> str:
    if isinstance(exc, SkipFile):
        return str(exc)
    # Anything else is a reader's or tokenizer's failure on this file's contents. A
    # MemoryError is one too: an absurd allocation that this file asked for, freed by now.
    return f"cannot be read: {describe(exc)}"


def _add(store: Store, planned: list[_Planned], bar: tqdm) -> int:
    """Embed and store `planned`; returns how many chunks were written (a concurrent ingest of
    the same files may have stored some of them first)."""
    if not planned:
        return 0
    texts = [p.text for p in planned]
    added = store.add(
        ids=[p.id for p in planned],
        texts=texts,
        metadatas=[p.metadata for p in planned],
        embeddings=store.embedding.encode(texts),
    )
    bar.update(len(planned))
    return added


def remove_sources(paths: Iterable[Path], store: Store) -> int:
    """Delete the chunks of the given files, and of every file under a given folder (as
    ingested: by resolved path); returns the count. A path that has no chunks is an error, and
    then nothing is deleted."""
    ids_of = store.sources()
    ids: set[str] = set()
    missing: list[str] = []
    for path in paths:
        wanted = source_name(path.resolve())
        found = [s for s in ids_of if within(s, {wanted})]
        ids.update(i for source in found for i in ids_of[source])
        if not found:
            missing.append(wanted)
    if missing:
        raise NotFoundError(_not_stored(missing, sorted(ids_of), store.name))
    deleted = store.delete(sorted(ids))
    store.sync_lexical()
    return deleted


def within(source: str, paths: Container[str]) -> bool:
    """Whether the stored `source` is one of `paths` (sources too) or inside one of them,
    folder by folder: `/x/docs2/a.md` is not inside `/x/docs`."""
    return source in paths or any(str(folder) in paths for folder in Path(source).parents)


def _not_stored(missing: list[str], stored: list[str], collection: str) -> str:
    """One line: the first path that has no chunks, and stored files it may have meant."""
    first = missing[0]
    near = [s for s in stored if Path(s).name == Path(first).name][:3]
    near = near or get_close_matches(first, stored, n=3)
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    hint = f"; did you mean {', '.join(near)}?" if near else ""
    return f"{first}{more} is not in collection {collection!r}, nothing was deleted{hint}"
