"""`rearag serve` (OpenAI-compatible HTTP) and `rearag mcp` (MCP over stdio)."""

from __future__ import annotations

from typing import Annotated

import typer

from rearag.cli.common import CollectionOpt, StrategyOpt, settings_of


def serve(
    ctx: typer.Context,
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="collection served as a model; repeatable"),
    ] = None,
    host: Annotated[str | None, typer.Option(help="interface (default: 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: 8000)")] = None,
    api_key: Annotated[
        str | None, typer.Option(help="require Bearer KEY (safer: $REARAG_SERVE__API_KEY)")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="processes, each loads the models")] = 1,
    strategy: StrategyOpt = None,
) -> None:
    """Serve collections over an OpenAI-compatible HTTP API, with a chat page at /."""
    from rearag.agent.serving.server import run_server

    settings = settings_of(
        ctx,
        **{"serve.host": host, "serve.port": port, "serve.api_key": api_key},
        **{"reranker.strategy": strategy},
    )
    run_server(settings, collection or [settings.collection], workers)


def mcp(ctx: typer.Context, collection: CollectionOpt = None) -> None:
    """Serve collections, search, rerank and ask as MCP tools over stdio (default collection:
    --collection); models load on the first call that needs them."""
    from rearag.agent.serving.mcp_server import run_mcp

    # Read on the first tool call: a bad configuration is a tool error, not a dead server.
    run_mcp(lambda: settings_of(ctx, collection=collection))
