"""`rearag ingest`, `remove`, `search` and `rearag collections …`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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
from rearag.core.config import SearchMode
from rearag.core.errors import InvalidInputError, RearagError
from rearag.core.filters import Where, coerce

collections_app = typer.Typer(help="List and delete collections.", no_args_is_help=True)


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="files and folders to ingest")],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="no progress bars (drawn only on a terminal)")
    ] = False,
    follow_links: Annotated[
        bool,
        typer.Option(
            "--follow-links", help="read links in the folders that point outside them too"
        ),
    ] = False,
    include: Annotated[
        list[str] | None,
        typer.Option(
            help="read only files matching this glob (repeatable), matched against the path "
            "from the folder named and the file name, e.g. 'guide/*' or '*.md'"
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="leave out files matching this glob (repeatable; wins over --include)"),
    ] = None,
    meta: Annotated[
        list[str] | None,
        typer.Option(
            help="key=value on every chunk, for --where filters (repeatable; 2020 is a number, "
            "true a boolean)"
        ),
    ] = None,
) -> None:
    """Chunk, embed and index files (.txt .md .rst .html .pdf, README-like names, BEIR .jsonl,
    other files whose content is text; each also .gz). Every file left out is reported with the
    reason, except those --include/--exclude leave out. Re-running is cheap: unchanged chunks
    are kept, changed files replace their chunks."""
    from rearag.tools.ingest import ingest as run_ingest
    from rearag.tools.loaders import SUPPORTED_HELP, check_paths_exist
    from rearag.tools.store import Store, list_collections, make_client

    settings = settings_of(ctx, collection=collection)
    metadata = parse_meta(meta or [])
    check_paths_exist(paths)  # before the collection is created: a typo must not leave one
    client = make_client(settings)
    existed = settings.collection in list_collections(client)
    store = Store(settings, settings.collection, create=True, client=client)
    try:
        report = run_ingest(
            paths,
            store,
            progress=not quiet and not as_json,
            on_problem=lambda p: stderr_line(f"skipped {p.path}: {p.reason}"),
            follow_links=follow_links,
            include=include or (),
            exclude=exclude or (),
            metadata=metadata,
        )
    except KeyboardInterrupt:
        stderr_line("interrupted: the collection is usable; run the same command again to finish")
        raise typer.Exit(130) from None
    except RearagError:
        if not existed and store.count() == 0:
            store.drop()  # e.g. an --include that matches nothing: no collection is left behind
        raise
    if not existed and report.chunks_total == 0:
        store.drop()  # an ingest that stored nothing must not leave an empty collection
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
