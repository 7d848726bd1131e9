"""`rearag config show`: the effective configuration."""

from __future__ import annotations

from typing import Any

import typer

from rearag.cli.common import JsonOpt, out, print_json, settings_of

config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)


@config_app.command("show")
def config_show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Print the effective configuration (file < environment < flags)."""
    data = settings_of(ctx).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    import tomli_w

    out.print(tomli_w.dumps(_drop_none(data)), markup=False, highlight=False)


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    # TOML has no null: an unset value is shown by its absence.
    return {
        k: _drop_none(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None
    }
