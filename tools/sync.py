"""Keeping a collection in sync with folders: after `sync`, the collection holds what ingesting
the folders afresh would give it. New and changed files are ingested by `ingest` (unchanged
chunks are kept, never embedded again), and the chunks of files no longer there are deleted.

Which stored files are deleted: those under a folder named (a stored `source` inside it, folder
by folder: syncing `/x/docs` never touches `/x/docs2`) for which the folder no longer gives a
file: deleted, moved away, or now left out by `--include`/`--exclude`. Sources outside the
folders named are left alone, so other folders ingested into the same collection stay. A file
that is still there but skipped (unreadable, empty, binary, too large, in a folder that cannot
be listed) keeps its chunks: a passing read error must not wipe what was stored. The report
says how many chunks each skipped file kept; to drop them, delete or exclude the file, or
`rearag remove` it. A path named that does not exist is an error, never "everything in it was
deleted"; a folder that exists but holds no file any more loses all its stored files.

Order, for Ctrl-C and kills: new chunks first, then the stale chunks of changed files (both by
`ingest`), then the chunks of files gone. An interrupted sync leaves every file findable by its
old or new chunks, and running it again finishes the job.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, computed_field

from rearag.tools.ingest import FileOutcome, FileProblem, IngestReport, ingest, within
from rearag.tools.loaders import check_paths_exist, source_name
from rearag.tools.store import NewCollection, Store

# Why a path not found stops a sync before anything is read (`check_paths_exist`).
NOTHING_CHANGED = "nothing was changed: a missing path is not taken for an emptied folder"


class KeptFile(FileProblem):
    """A file skipped by this sync, or a folder it could not list: the chunks stored of it
    stay as they were."""

    chunks_kept: int = 0


class SyncReport(BaseModel):
    collection: str
    dry_run: bool = False  # then every count says what the sync would do; nothing was changed
    added: list[FileOutcome] = []  # files the collection held no chunk of
    changed: list[FileOutcome] = []  # files whose chunks changed
    unchanged: list[FileOutcome] = []
    deleted: list[FileOutcome] = []  # files gone or no longer selected: all their chunks
    skipped: list[KeptFile] = []
    warnings: list[FileProblem] = []
    chunks_added: int = 0
    chunks_deleted: int = 0  # of changed files and of files gone
    chunks_unchanged: int = 0
    chunks_total: int = 0

    @computed_field  # in --json too
    @property
    def in_sync(self) -> bool:
        """Whether the collection already matched the folders: there was nothing to do."""
        return not (self.added or self.changed or self.deleted)


def sync(
    paths: Iterable[Path],
    store: Store | NewCollection,
    *,
    dry_run: bool = False,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    follow_links: bool = False,
    metadata: Mapping[str, Any] | None = None,
    progress: bool = True,
    on_problem: Callable[[FileProblem], None] | None = None,
) -> SyncReport:
    """Make `store` hold the files under `paths` (folders or files) as `ingest` selects them
    (`include`, `exclude`, `follow_links`; `metadata` on every chunk), and nothing else under
    them; see the module's docstring for what is deleted and what is kept. A `dry_run` plans the
    same and changes nothing (`store` may then be a `NewCollection`). `progress` and
    `on_problem` are `ingest`'s."""
    paths = list(paths)
    check_paths_exist(paths, NOTHING_CHANGED)
    folders = {source_name(path.resolve()) for path in paths}
    # Read before the ingest: a file that another ingest stores meanwhile was not listed here,
    # and must not be taken for one gone (a file there before the sync began was found by it).
    stored = {s: ids for s, ids in store.sources().items() if within(s, folders)}
    ingested = ingest(
        paths,
        store,
        dry_run=dry_run,
        progress=progress,
        on_problem=on_problem,
        follow_links=follow_links,
        include=include,
        exclude=exclude,
        metadata=metadata,
    )
    report = _report(ingested, dry_run)
    gone = _gone(stored, ingested, report.skipped)
    ids = sorted(chunk_id for chunk_ids in gone.values() for chunk_id in chunk_ids)
    if dry_run:
        deleted = len(ids)
        report.chunks_total = ingested.chunks_total - deleted
    else:
        deleted = store.delete(ids)
        store.sync_lexical()
        report.chunks_total = store.count()
    report.deleted = [FileOutcome(path=s, chunks_deleted=len(gone[s])) for s in sorted(gone)]
    report.chunks_deleted += deleted
    return report


def _report(ingested: IngestReport, dry_run: bool) -> SyncReport:
    """The sync's report of the ingest's part: each file read by what changed of it."""
    report = SyncReport(
        collection=ingested.collection,
        dry_run=dry_run,
        skipped=[KeptFile(path=p.path, reason=p.reason) for p in ingested.skipped],
        warnings=ingested.warnings,
        chunks_added=ingested.chunks_added,
        chunks_deleted=ingested.chunks_deleted,
        chunks_unchanged=ingested.chunks_unchanged,
    )
    by_change = {"added": report.added, "changed": report.changed, "unchanged": report.unchanged}
    for outcome in ingested.outcomes:
        by_change[outcome.change].append(outcome)
    return report


def _gone(
    stored: dict[str, set[str]], ingested: IngestReport, skipped: list[KeptFile]
) -> dict[str, set[str]]:
    """The stored files (under the folders synced) that the ingest neither read nor skipped,
    with their chunk ids. A skipped file's chunks, or those of files under a skipped folder,
    are counted as kept in `skipped` instead."""
    read = {outcome.path for outcome in ingested.outcomes}
    kept = {_as_stored(file.path): file for file in skipped}
    gone: dict[str, set[str]] = {}
    for source, ids in stored.items():
        if source in read:
            continue
        around = (source, *map(str, Path(source).parents))  # the file, then its folders
        holder = next((kept[p] for p in around if p in kept), None)
        if holder is None:
            gone[source] = ids
        else:
            holder.chunks_kept += len(ids)
    return gone


def _as_stored(skipped: str) -> str:
    """A skipped path the way sources are stored: `discover` names some skipped paths under
    the folder as it was named (an unreadable folder under `docs`, where `docs` may be a link),
    while sources are resolved. The name itself is kept: a skipped link is not its target."""
    folder, name = os.path.split(skipped)
    return os.path.join(os.path.realpath(folder), name)
