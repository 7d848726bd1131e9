"""`rearag serve` (OpenAI-compatible HTTP) and `rearag mcp` (MCP over stdio)."""

from __future__ import annotations

from typing import Annotated

import typer

from rearag.cli.common import CollectionOpt, JsonOpt, StrategyOpt, out, print_json, settings_of

keys_app = typer.Typer(help="API keys for `rearag serve`.", no_args_is_help=True)


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


@keys_app.command("new")
def keys_new(
    name: Annotated[str, typer.Argument(help="who holds it (letters, digits, _ . -)")],
    collection: Annotated[
        list[str] | None,
        typer.Option("--collection", "-c", help="a collection it sees; repeatable (default: all)"),
    ] = None,
    where: Annotated[
        list[str] | None,
        typer.Option(help="a filter every search of this key is held to (as ask --where)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a key: print it once, and the `[[serve.keys]]` entry that holds only its SHA-256."""
    import tomli_w
    from pydantic import ValidationError

    from rearag.agent.serving.access import digest, new_key
    from rearag.core.config import ApiKey
    from rearag.core.errors import ConfigError
    from rearag.core.filters import Where

    key = new_key()
    filter_ = Where.from_cli(where or [])
    try:
        entry = ApiKey(
            name=name,
            sha256=digest(key).hex(),
            collections=collection or ["*"],
            where=filter_.spec if filter_ else None,
        )
    except ValidationError as exc:
        if any(error["loc"] == ("name",) for error in exc.errors()):
            raise ConfigError(
                f"key name {name[:60]!r}: use 1-40 letters, digits, _ . or -"
            ) from None
        raise ConfigError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    toml = tomli_w.dumps({"serve": {"keys": [entry.model_dump(exclude_none=True)]}})
    if as_json:
        print_json({"name": name, "key": key, "sha256": entry.sha256, "toml": toml})
        return
    out.print(f"key for {name} (shown once, not stored): {key}", markup=False)
    out.print("add to rearag.toml (in serve.keys_file, write [[keys]]):\n", markup=False)
    out.print(toml, markup=False)
