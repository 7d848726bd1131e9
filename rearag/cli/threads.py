"""`rearag threads …`: the conversations kept in $REARAG_HOME/checkpoints.sqlite."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from rearag.cli.common import JsonOpt, out, print_json, settings_of

threads_app = typer.Typer(
    help="List, delete and prune conversation threads (`ask --thread`, `chat`, the server).",
    no_args_is_help=True,
)


@threads_app.command("list")
def threads_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List threads, latest active first: messages, checkpoints stored, last activity (UTC)."""
    from rearag.agent.threads import list_threads

    threads = list_threads(settings_of(ctx))
    if as_json:
        print_json([asdict(t) for t in threads])
        return
    if not threads:
        out.print("no threads")
    width = max((len(t.thread_id) for t in threads), default=0)
    for t in threads:
        out.print(
            f"{t.thread_id:<{width}}  {t.messages:>4} message(s)  {t.checkpoints:>5} "
            f"checkpoint(s)  last active {t.last_active}",
            markup=False,
            highlight=False,
        )


@threads_app.command("delete")
def threads_delete(
    ctx: typer.Context,
    thread_ids: Annotated[list[str], typer.Argument(help="threads to delete")],
    as_json: JsonOpt = False,
) -> None:
    """Delete threads with all their checkpoints; none is deleted if one does not exist."""
    from rearag.agent.threads import delete_threads

    delete_threads(settings_of(ctx), thread_ids)
    if as_json:
        print_json({"deleted": thread_ids})
    else:
        out.print(f"deleted {', '.join(thread_ids)}", markup=False, highlight=False)


@threads_app.command("prune")
def threads_prune(
    ctx: typer.Context,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            min=0,
            metavar="DAYS",
            help="also delete threads inactive for more than DAYS days",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Keep each thread's latest checkpoint only (all it needs) and compact the file.

    Also deletes the threads of questions asked without one, which no one can continue."""
    from rearag.agent.threads import prune_threads

    report = prune_threads(settings_of(ctx), older_than)
    if as_json:
        print_json(asdict(report))
        return
    out.print(
        f"{report.checkpoints_removed} checkpoint(s) and {report.threads_removed} thread(s) "
        f"removed; checkpoints.sqlite {report.bytes_before:,} -> {report.bytes_after:,} bytes",
        markup=False,
        highlight=False,
    )
