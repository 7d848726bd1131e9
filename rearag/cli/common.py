"""What every command group shares: the console, `--json`, the options several commands take,
and the settings resolved from the global options."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console

from rearag.core.config import RerankStrategy, SearchMode, Settings, load_settings
from rearag.core.errors import InvalidInputError
from rearag.core.text import lone_surrogate
from rearag.policies.registry import POLICIES

out = Console(soft_wrap=True)  # long lines stay whole for pipes and copy-paste

# Typer validates a choice typed as an Enum; member names are identifiers, values the names.
PolicyName = StrEnum("PolicyName", [(name.replace("-", "_"), name) for name in POLICIES])

RerankStrategyName = StrEnum("RerankStrategyName", [(n, n) for n in get_args(RerankStrategy)])

JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
WhereOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        help="only chunks whose metadata matches: key=value, key!=value, key>=2020 (> < <=), "
        "key=a|b, path=docs/*.md, or a JSON object; repeatable, all must hold",
    ),
]
CollectionOpt = Annotated[
    str | None, typer.Option("--collection", "-c", help="collection name (default: config)")
]
PolicyOpt = Annotated[PolicyName | None, typer.Option(help="reranker policy (default: config)")]
ModelOpt = Annotated[
    str | None,
    typer.Option(help="local:NAME, hf:REPO_OR_PATH, litellm:MODEL, policy:NAME (default: config)"),
]
ApiBaseOpt = Annotated[
    str | None, typer.Option(help="OpenAI-compatible server for litellm: models, e.g. vLLM")
]
FirstStageOpt = Annotated[SearchMode, typer.Option(help="first-stage retrieval")]
MaxNewTokensOpt = Annotated[
    int | None, typer.Option(help="generation budget per window (default: the policy's)")
]
StrategyOpt = Annotated[
    RerankStrategyName | None,
    typer.Option(
        help="how lists longer than a window are reranked: sliding (windows one after "
        "another), partition (a pivot, then concurrent windows), window (the head only); "
        "default: config"
    ),
]
RunDirOpt = Annotated[
    Path | None, typer.Option(help="where TREC run files go (default: HOME/runs)")
]
BeirArg = Annotated[Path, typer.Argument(help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/")]
# rearag.eval.beir.BEIR_SPLITS, spelled out: importing rearag.eval would slow every --help.
BeirSplitName = StrEnum("BeirSplitName", [(n, n) for n in ("train", "dev", "test")])
BeirSplitOpt = Annotated[
    BeirSplitName, typer.Option("--split", help="the judged split to read: qrels/SPLIT.tsv")
]


def stderr_line(message: str) -> None:
    # Plain write: rich would wrap a long path over several lines, and errors are one line.
    sys.stderr.write(message + "\n")


def settings_of(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings from the global options (`--config`, `--home`, …) plus `overrides`. Every
    command calls it before it uses its arguments, so it checks their text first."""
    check_text_arguments(ctx)
    obj = ctx.find_root().obj or {}
    return load_settings(obj.get("config_file"), **{**obj.get("overrides", {}), **overrides})


def check_text_arguments(ctx: typer.Context) -> None:
    """An argument that is not UTF-8 (bytes that Python reads as lone surrogates) is one clear
    error, not a traceback from the tokenizer or the JSON encoder deep inside a command. Paths
    are exempt: a file name may be any bytes."""
    current = ctx
    while current is not None:  # the command's own options, then its groups' (`--embedder`)
        for param in current.command.params:
            value = current.params.get(param.name or "")
            values = value if isinstance(value, list | tuple) else [value]
            if any(isinstance(v, str) and lone_surrogate(v) for v in values):
                what = f"the {param.name}" if param.param_type_name == "argument" else param.opts[0]
                raise InvalidInputError(f"{what} is not valid UTF-8 text")
        current = current.parent


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_snippet(text: str, limit: int = 300) -> None:
    """`text` on one indented line, cut to `limit` characters."""
    flat = " ".join(text.split())
    out.print(f"   {flat[:limit]}{'…' if len(flat) > limit else ''}", markup=False)
