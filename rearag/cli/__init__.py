"""The `rearag` command line: a module per command group, each of which only parses its
options, calls the library and prints. Every command that a script may call takes `--json`.

Errors are one line on stderr: a usage mistake (unknown command or option, bad value, missing
argument) is `error: … (see `rearag … --help`)` with exit status 2; a RearagError raised by the
library is `error: MESSAGE` with exit status 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from rearag.cli import agent, corpus, evaluation, rerank, serving, threads, training
from rearag.cli.common import stderr_line
from rearag.cli.config import config_app
from rearag.core.errors import RearagError

app = typer.Typer(
    help="rearag: agentic RAG with a reasoning reranker trained by reinforcement learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for command in (
    corpus.ingest,
    corpus.sync,
    corpus.remove,
    corpus.search,
    rerank.rerank,
    agent.ask,
    agent.chat,
    agent.graph,
    agent.demo,
    serving.serve,
    serving.mcp,
):
    app.command()(command)
app.add_typer(corpus.collections_app, name="collections")
app.add_typer(config_app, name="config")
app.add_typer(evaluation.eval_app, name="eval")
app.add_typer(training.train_app, name="train")
app.add_typer(training.policies_app, name="policies")
app.add_typer(threads.threads_app, name="threads")
app.add_typer(serving.keys_app, name="keys")


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(help="TOML config file (default: ./rearag.toml, $REARAG_CONFIG)")
    ] = None,
    home: Annotated[Path | None, typer.Option(help="data folder (default: $REARAG_HOME)")] = None,
    chroma_host: Annotated[
        str | None, typer.Option(help="use the Chroma server on this host")
    ] = None,
    chroma_port: Annotated[int | None, typer.Option(help="Chroma server port")] = None,
    embedder: Annotated[str | None, typer.Option(help="embedder model reference")] = None,
    embedder_backend: Annotated[
        str | None,
        typer.Option(help="how a local embedder runs: torch, torch-bf16, onnx or onnx-int8"),
    ] = None,
) -> None:
    ctx.obj = {
        "config_file": config,
        "overrides": {
            "home": home,
            "store.chroma_host": chroma_host,
            "store.chroma_port": chroma_port,
            "embedder.model": embedder,
            "embedder.backend": embedder_backend,
        },
    }


def main() -> None:
    """The `rearag` console script."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        # Not standalone: typer hands its usage errors to us instead of printing a usage box.
        status = app(standalone_mode=False)
    except typer.TyperException as exc:
        # Errors of the click that typer vendors (typer._click). typer exports no UsageError,
        # so a usage error is told by its exit status, 2.
        if type(exc).__name__ == "NoArgsIsHelpError":
            # A bare group: typer printed its help (stdout) while raising this; nothing ran, so
            # the status stays click's usage status.
            sys.exit(exc.exit_code)
        if exc.exit_code != 2:
            stderr_line(f"error: {exc.format_message()}")
            sys.exit(exc.exit_code)
        ctx = getattr(exc, "ctx", None)  # None for an option missing its value
        where = ctx.command_path if ctx is not None else "rearag"
        stderr_line(f"error: {exc.format_message()} (see `{where} --help`)")
        sys.exit(2)
    except typer.Abort:
        stderr_line("error: aborted")
        sys.exit(1)
    except RearagError as exc:
        stderr_line(f"error: {exc}")
        sys.exit(1)
    # A typer.Exit(n) comes back as n; a command that finished returns None.
    sys.exit(status if isinstance(status, int) else 0)
