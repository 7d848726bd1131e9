"""`rearag rerank`: first-stage search, then a listwise LLM policy."""

from __future__ import annotations

from typing import Annotated

import typer

from rearag.cli.common import (
    ApiBaseOpt,
    CollectionOpt,
    FirstStageOpt,
    JsonOpt,
    MaxNewTokensOpt,
    ModelOpt,
    PolicyOpt,
    StrategyOpt,
    out,
    print_json,
    print_snippet,
    settings_of,
)
from rearag.core.config import SearchMode


def rerank(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="the question the passages should answer")],
    collection: CollectionOpt = None,
    policy: PolicyOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
    first_stage: FirstStageOpt = SearchMode.hybrid,
    depth: Annotated[
        int | None, typer.Option(help="first-stage candidates to rerank (default: config)")
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="results shown")] = 20,
    max_new_tokens: MaxNewTokensOpt = None,
    strategy: StrategyOpt = None,
    show_reasoning: Annotated[
        bool, typer.Option("--show-reasoning", help="print each window's reasoning")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Retrieve candidates, then rerank them with a listwise LLM policy."""
    from rearag.policies.reranker import Reranker
    from rearag.tools.retriever import Retriever

    settings = settings_of(ctx, collection=collection)
    reranker = Reranker(
        policy,
        model,
        settings=settings,
        api_base=api_base,
        max_new_tokens=max_new_tokens,
        strategy=strategy,
    )
    ranked = reranker.rank_search(
        query, Retriever(settings=settings), mode=first_stage, depth=depth
    )
    if as_json:
        data = ranked.model_dump()
        data["results"] = [r.model_dump() for r in ranked.top_k(top_k)]
        print_json(data)
        return
    for r in ranked.top_k(top_k):
        moved = f"(was {r.original_rank})" if r.original_rank != r.rank else ""
        out.print(
            f"[bold]{r.rank}.[/bold] [cyan]{r.passage().label}[/cyan] {moved}", highlight=False
        )
        print_snippet(r.text)
    for w in ranked.windows:
        shown = f"[{w.start + 1}-{w.end}]" + (" + pivot" if w.pivot else "")
        cached = " (cached)" if w.cached else ""
        out.print(
            f"round {w.round} window {shown}: {w.status}{cached}"
            + (f" ({w.error})" if w.error else ""),
            markup=False,
            highlight=False,
        )
        if show_reasoning:
            out.print(f"   reasoning: {w.reasoning or '(none)'}", markup=False)
            out.print(f"   output: {w.output!r}", markup=False)
