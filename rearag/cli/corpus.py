"""`rearag ingest`, `sync`, `remove`, `search` and `rearag collections …`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from rearag.cli.common import (
    CollectionOpt,
    JsonOpt,
    WhereOpt,
    out,
    print_json,
    print_snippet,
    settings_of,
    stderr_line,
)
from rearag.core.config import SearchMode, Settings
from rearag.core.errors import InvalidInputError, RearagError
from rearag.core.filters import Where, coerce

if TYPE_CHECKING:
    from rearag.tools.ingest import FileProblem
    from rearag.tools.store import NewCollection, Store
    from rearag.tools.sync import SyncReport

collections_app = typer.Typer(help="List and delete collections.", no_args_is_help=True)

# The options `ingest` and `sync` share: they select and read files the same way.
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="no progress bars (drawn only on a terminal)")
]
FollowLinksOpt = Annotated[
    bool,
    typer.Option("--follow-links", help="read links in the folders that point outside them too"),
]
IncludeOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="read only files matching this glob (repeatable), matched against the path "
        "from the folder named and the file name, e.g. 'guide/*' or '*.md'"
    ),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option(help="leave out files matching this glob (repeatable; wins over --include)"),
]
MetaOpt = Annotated[
    list[str] | None,
    typer.Option(
        help="key=value on every chunk, for --where filters (repeatable; 2020 is a number, "
        "true a boolean)"
    ),
]


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="files and folders to ingest")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    follow_links: FollowLinksOpt = False,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    meta: MetaOpt = None,
) -> None:
    """Chunk, embed and index files (.txt .md .rst .html .pdf, README-like names, BEIR .jsonl,
    other files whose content is text; each also .gz). Every file left out is reported with the
    reason, except those --include/--exclude leave out. Re-running is cheap: unchanged chunks
    are kept, changed files replace their chunks."""
    from rearag.tools.ingest import ingest as run_ingest
    from rearag.tools.loaders import SUPPORTED_HELP, check_paths_exist

    settings = settings_of(ctx, collection=collection)
    metadata = parse_meta(meta or [])
    check_paths_exist(paths)  # before the collection is created: a typo must not leave one
    with _collection_to_change(settings) as store:
        report = run_ingest(
            paths,
            store,
            progress=not quiet and not as_json,
            on_problem=_print_skipped,
            follow_links=follow_links,
            include=include or (),
            exclude=exclude or (),
            metadata=metadata,
        )
    if as_json:
        print_json(report.model_dump())
    else:
        out.print(
            f"{report.collection}: {report.files} file(s) ingested, {len(report.skipped)} "
            f"skipped; {report.documents} document(s); chunks +{report.chunks_added} "
            f"-{report.chunks_deleted} (={report.chunks_unchanged} unchanged), "
            f"{report.chunks_total} in total",
            markup=False,
        )
    if report.documents == 0:
        found = f"all {len(report.skipped)} file(s) skipped" if report.skipped else "no files"
        stderr_line(f"error: nothing to ingest: {found} (supported: {SUPPORTED_HELP})")
        raise typer.Exit(1)


def sync(
    ctx: typer.Context,
    paths: Annotated[
        list[Path], typer.Argument(help="folders (or files) the collection is to match")
    ],
    collection: CollectionOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would change, and change nothing")
    ] = False,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    follow_links: FollowLinksOpt = False,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    meta: MetaOpt = None,
) -> None:
    """Make a collection match folders: new and changed files are ingested, and the chunks of
    files gone from the folders (or now left out by --include/--exclude) are deleted; each file
    is listed (+ added, ~ changed, - deleted). Files outside the folders stay, and so do the
    chunks of a file that is there but skipped (unreadable, empty, ...). A path that does not
    exist is an error. Safe to stop and run again, like ingest."""
    from rearag.tools.loaders import check_paths_exist
    from rearag.tools.sync import NOTHING_CHANGED
    from rearag.tools.sync import sync as run_sync

    settings = settings_of(ctx, collection=collection)
    metadata = parse_meta(meta or [])
    check_paths_exist(paths, NOTHING_CHANGED)  # before the collection is created
    with _collection_to_change(settings, dry_run=dry_run) as store:
        report = run_sync(
            paths,
            store,
            dry_run=dry_run,
            include=include or (),
            exclude=exclude or (),
            follow_links=follow_links,
            metadata=metadata,
            progress=not quiet and not as_json,
            on_problem=_print_skipped,
        )
    if as_json:
        print_json(report.model_dump())
        return
    _print_sync(report, [path.resolve() for path in paths])


# What Ctrl-C prints (exit status 130): an interrupted change leaves a usable collection.
_INTERRUPTED = "the collection is usable; run the same command again to finish"
_INTERRUPTED_DRY = "nothing was changed"


@contextlib.contextmanager
def _collection_to_change(
    settings: Settings, *, dry_run: bool = False
) -> Iterator[Store | NewCollection]:
    """The collection an ingest or sync writes to: created if missing, and dropped again if it
    is left empty (nothing was stored, or an error came before anything was, such as an
    --include that matches nothing). A dry run creates nothing: a missing collection is then a
    `NewCollection`. Ctrl-C is one line and exit status 130."""
    from rearag.tools.store import NewCollection, Store, list_collections, make_client

    client = make_client(settings)
    existed = settings.collection in list_collections(client)
    if dry_run and not existed:
        target: Store | NewCollection = NewCollection(settings, settings.collection)
    else:
        target = Store(settings, settings.collection, create=True, client=client)
    created = target if isinstance(target, Store) and not existed else None
    try:
        yield target
    except KeyboardInterrupt:
        stderr_line(f"interrupted: {_INTERRUPTED_DRY if dry_run else _INTERRUPTED}")
        raise typer.Exit(130) from None
    except RearagError:
        if created and created.count() == 0:
            created.drop()
        raise
    if created and created.count() == 0:
        created.drop()


def _print_skipped(problem: FileProblem) -> None:
    stderr_line(f"skipped {problem.path}: {problem.reason}")


def _print_sync(report: SyncReport, roots: list[Path]) -> None:
    """One line per file added (+), changed (~) or deleted (-), its path from the folder
    named; one per skipped file that kept chunks (!); then the summary."""
    from rearag.tools.ingest import shown_path

    def shown(path: str) -> str:
        return shown_path(Path(path), roots)

    for f in report.added:
        out.print(f"+ {shown(f.path)} ({f.chunks_added} chunk(s))", markup=False)
    for f in report.changed:
        out.print(
            f"~ {shown(f.path)} (+{f.chunks_added} -{f.chunks_deleted} chunk(s))", markup=False
        )
    for f in report.deleted:
        out.print(f"- {shown(f.path)} ({f.chunks_deleted} chunk(s))", markup=False)
    for kept in report.skipped:
        if kept.chunks_kept:
            line = f"! {shown(kept.path)} kept its {kept.chunks_kept} chunk(s): {kept.reason}"
            out.print(line, markup=False)
    out.print(_sync_summary(report), markup=False)


def _sync_summary(report: SyncReport) -> str:
    """The last line of `rearag sync`: files and chunks, as `ingest`'s summary counts them."""
    head = report.collection + (" (dry run, nothing was changed)" if report.dry_run else "")
    files = f"{len(report.unchanged)} file(s) unchanged, {len(report.skipped)} skipped"
    if report.in_sync:
        return f"{head}: nothing to do; {files}; {report.chunks_total} chunk(s) in total"
    return (
        f"{head}: {len(report.added)} added, {len(report.changed)} changed, "
        f"{len(report.deleted)} deleted, {files}; chunks +{report.chunks_added} "
        f"-{report.chunks_deleted} (={report.chunks_unchanged} unchanged), "
        f"{report.chunks_total} in total"
    )


def parse_meta(pairs: list[str]) -> dict[str, str | int | float | bool]:
    """`--meta key=value` values, typed as `--where` reads them."""
    metadata = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInputError(f"--meta {pair[:80]!r}: write key=value")
        metadata[key.strip()] = coerce(value.strip())
    from rearag.tools.ingest import check_metadata

    check_metadata(metadata)
    return metadata


def remove(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="files, or folders, whose chunks to delete")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete the chunks of files, or of every file under a folder, from a collection (and
    from its BM25 index). A path that is not in the collection is an error."""
    from rearag.tools.ingest import remove_sources
    from rearag.tools.store import Store

    settings = settings_of(ctx, collection=collection)
    deleted = remove_sources(paths, Store(settings, settings.collection))
    if as_json:
        print_json({"collection": settings.collection, "chunks_deleted": deleted})
    else:
        out.print(f"{settings.collection}: {deleted} chunk(s) deleted", markup=False)


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="what to search for")],
    collection: CollectionOpt = None,
    k: Annotated[int | None, typer.Option("-k", help="number of results (default: config)")] = None,
    mode: Annotated[SearchMode | None, typer.Option(help="search mode (default: config)")] = None,
    where: WhereOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a collection: dense, BM25 or hybrid (reciprocal rank fusion)."""
    from rearag.tools.retriever import Retriever

    condition = Where.from_cli(where or [])
    retriever = Retriever(settings=settings_of(ctx, collection=collection))
    hits = retriever.search(query, k, mode, where=condition)
    if as_json:
        print_json([h.model_dump() for h in hits])
        return
    if not hits:
        out.print("no results")
    for rank, hit in enumerate(hits, start=1):
        # The path too: several sources may share a title. Both are text, not markup.
        out.print(
            f"[bold]{rank}.[/bold] {hit.score:.4f}  [cyan]{escape(hit.label)}[/cyan]  "
            f"[dim]({escape(hit.location)})[/dim]",
            highlight=False,
        )
        print_snippet(hit.text)


@collections_app.command("list")
def collections_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List collections with their chunk counts."""
    from rearag.tools.store import collection_counts

    counts = collection_counts(settings_of(ctx))
    if as_json:
        print_json([{"name": name, "chunks": chunks} for name, chunks in counts.items()])
        return
    for name, chunks in counts.items():
        out.print(f"{name}\t{chunks}", markup=False)


@collections_app.command("delete")
def collections_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="collection to delete")],
    as_json: JsonOpt = False,
) -> None:
    """Delete a collection and its BM25 index."""
    from rearag.tools.store import Store

    Store(settings_of(ctx), name).drop()
    if as_json:
        print_json({"deleted": name})
    else:
        out.print(f"deleted {name}", markup=False)
