"""`rearag eval retrieval|rerank|qa`: metrics on judged datasets."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from rearag.cli.agent import agent_of
from rearag.cli.common import (
    ApiBaseOpt,
    BeirArg,
    CollectionOpt,
    FirstStageOpt,
    JsonOpt,
    MaxNewTokensOpt,
    ModelOpt,
    PolicyOpt,
    RunDirOpt,
    out,
    print_json,
    settings_of,
)
from rearag.core.config import SearchMode

eval_app = typer.Typer(
    help="Evaluate retrieval and reranking on judged datasets.", no_args_is_help=True
)

# The search modes, and "all" for every one of them.
EvalMode = StrEnum("EvalMode", [*((m.name, m.value) for m in SearchMode), ("all", "all")])


@eval_app.command("retrieval")
def eval_retrieval(
    ctx: typer.Context,
    dataset: BeirArg,
    mode: Annotated[
        list[EvalMode] | None, typer.Option(help="search mode, repeatable (default: all)")
    ] = None,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a judged dataset (cached by fingerprint) and report nDCG@10 and Recall@100."""
    from rearag.eval.retrieval import evaluate_retrieval

    modes = list(SearchMode) if not mode or "all" in mode else mode
    results = evaluate_retrieval(dataset, settings_of(ctx), modes, run_dir, progress=not as_json)
    if as_json:
        print_json([r.model_dump() for r in results])
        return
    table = Table(title=f"retrieval on {dataset}")
    for col in ("mode", "nDCG@10", "Recall@100", "queries"):
        table.add_column(col)
    for r in results:
        table.add_row(r.mode, f"{r.ndcg_10:.4f}", f"{r.recall_100:.4f}", str(r.queries))
    out.print(table)
    for r in results:
        out.print(
            f"run file ({r.mode}): {r.run_file}", markup=False, highlight=False, soft_wrap=True
        )


@eval_app.command("qa")
def eval_qa(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Argument(help='JSONL: {"question": ..., "answers": [...]}')],
    collection: CollectionOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Exact match, token F1, abstention rate and citation validity of the agent's answers."""
    from rearag.eval.qa import evaluate_qa, load_items

    items = load_items(dataset)
    result = evaluate_qa(agent_of(ctx, collection), items, progress=not as_json)
    if as_json:
        print_json(result.model_dump())
        return
    for key, value in result.model_dump().items():
        out.print(
            f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}", markup=False
        )


@eval_app.command("rerank")
def eval_rerank(
    ctx: typer.Context,
    dataset: BeirArg,
    policy: PolicyOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    first_stage: FirstStageOpt = SearchMode.hybrid,
    depth: Annotated[int, typer.Option(help="first-stage documents reranked per query")] = 20,
    queries: Annotated[int | None, typer.Option(help="evaluate the first N judged queries")] = None,
    max_new_tokens: MaxNewTokensOpt = None,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rerank first-stage results of a judged dataset: nDCG@10 before and after."""
    from rearag.eval.rerank import evaluate_rerank
    from rearag.policies.reranker import Reranker

    settings = settings_of(ctx)
    reranker = Reranker(
        policy, model, settings=settings, api_base=api_base, max_new_tokens=max_new_tokens
    )
    result = evaluate_rerank(
        dataset,
        settings,
        reranker,
        first_stage=first_stage,
        depth=depth,
        max_queries=queries,
        run_dir=run_dir,
        progress=not as_json,
    )
    if as_json:
        print_json(result.model_dump())
        return
    table = Table(title=f"{result.policy} on {dataset} ({result.queries} queries)")
    for col in ("first stage", "nDCG@10 before", "nDCG@10 after", "windows", "s/query"):
        table.add_column(col)
    table.add_row(
        f"{result.first_stage} top {result.depth}",
        f"{result.ndcg_10_before:.4f}",
        f"{result.ndcg_10_after:.4f}",
        ", ".join(f"{k} {v}" for k, v in sorted(result.window_status.items())),
        f"{result.seconds_per_query:.1f}",
    )
    out.print(table)
    out.print(f"run file: {result.run_file}", markup=False, highlight=False)
