"""What every command group of the `rearag` CLI shares: the console, `--json`, and the
settings resolved from the global options."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from rearag.core.config import Settings, load_settings

out = Console(soft_wrap=True)  # long lines stay whole for pipes and copy-paste

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]


def stderr_line(message: str) -> None:
    # Plain write: rich would wrap a long path over several lines, and errors are one line.
    sys.stderr.write(message + "\n")


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from the global options (`--config`, `--home`, …) plus `overrides`."""
    root = ctx.find_root()
    obj = root.obj or {}
    return load_settings(obj.get("config_file"), **{**obj.get("overrides", {}), **overrides})


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
