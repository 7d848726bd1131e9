"""`rearag eval retrieval|rerank|qa`: metrics on judged datasets."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from rearag.cli.agent import agent_of
from rearag.cli.common import (
    ApiBaseOpt,
    BeirArg,
    BeirSplitName,
    BeirSplitOpt,
    FirstStageOpt,
    JsonOpt,
    MaxNewTokensOpt,
    ModelOpt,
    PolicyOpt,
    RunDirOpt,
    StrategyOpt,
    out,
    print_json,
    settings_of,
)
from rearag.core.config import SearchMode

if TYPE_CHECKING:
    from rearag.eval.qa import QAReport

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
    split: BeirSplitOpt = BeirSplitName.test,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest a judged dataset (cached by fingerprint) and report nDCG@10 and Recall@100."""
    from rearag.eval.retrieval import evaluate_retrieval

    modes = list(SearchMode) if not mode or "all" in mode else mode
    results = evaluate_retrieval(
        dataset, settings_of(ctx), modes, run_dir, split=split.value, progress=not as_json
    )
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


QADatasetArg = Annotated[
    Path,
    typer.Argument(
        help='JSONL of {"question", "answers": [...], "gold"} (asked against --collection), '
        "or a folder holding qa.jsonl and corpus.jsonl or docs/ (ingested into a collection of "
        "its own)"
    ),
]


@eval_app.command("qa")
def eval_qa(
    ctx: typer.Context,
    dataset: QADatasetArg,
    collection: Annotated[
        str | None,
        typer.Option(
            "--collection",
            "-c",
            help="collection a JSONL dataset is asked against (default: config)",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="ask the first N questions (of the sample, if any)")
    ] = None,
    sample: Annotated[
        int | None, typer.Option(min=1, help="ask N questions drawn at random (see --seed)")
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed of --sample")] = 0,
    cross_article: Annotated[
        bool,
        typer.Option(
            "--cross-article/--no-cross-article",
            help="folder datasets: also ask each article's answerable questions against the "
            "corpus without that article (the right response is to abstain)",
        ),
    ] = True,
    rows: Annotated[
        Path | None,
        typer.Option(help="per-question JSONL, written as the run goes (default: HOME/runs/)"),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """SQuAD 2.0-style QA: exact match, F1, attribution, citation precision and abstention on
    unanswerable and cross-article questions, per kind of question."""
    from rearag.eval.qa import evaluate_qa

    if collection and dataset.is_dir():
        raise typer.BadParameter(
            "a folder dataset is evaluated in a collection of its own", ctx=ctx, param_hint="'-c'"
        )
    report = evaluate_qa(
        dataset,
        settings_of(ctx),
        lambda name: agent_of(ctx, name),
        collection=collection,
        limit=limit,
        sample=sample,
        seed=seed,
        cross_article=cross_article,
        rows_file=rows,
        progress=not as_json,
    )
    if as_json:
        print_json(report.model_dump())
        return
    print_qa_report(report, dataset)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def print_qa_report(report: QAReport, dataset: Path) -> None:
    # A column per kind of question (a row per kind would not fit 80 columns).
    table = Table(title=f"QA on {dataset} ({report.questions} questions)")
    table.add_column("")
    for kind in report.kinds:
        table.add_column(kind, justify="right")
    kinds = report.kinds.values()
    table.add_row("questions", *(str(k.questions) for k in kinds))
    table.add_row("answered", *(str(k.answered) for k in kinds))
    table.add_row("abstained", *(str(k.abstained) for k in kinds))
    table.add_row("exact match", *(_share(k.exact_match) for k in kinds))
    table.add_row("token F1", *(_share(k.f1) for k in kinds))
    table.add_row("contains answer", *(_share(k.contains_answer) for k in kinds))
    table.add_row("attribution", *(_share(k.attribution) for k in kinds))
    table.add_row("abstention", *(_share(k.abstention) for k in kinds))
    out.print(table)
    lines = [
        f"citation precision: {_share(report.citation_precision)} "
        f"({report.supported_pairs}/{report.citation_pairs} (sentence, citation) pairs supported, "
        f"{report.invalid_citations} invalid citations)",
        "modes: " + ", ".join(f"{mode} {n}" for mode, n in report.modes.items()),
        f"seconds per question: p50 {report.seconds_p50:.2f}, p95 {report.seconds_p95:.2f}, "
        f"mean {report.seconds_mean:.2f}",
        f"collections: {', '.join(report.collections)}",
        f"rows: {report.rows_file}",
    ]
    for line in lines:
        out.print(line, markup=False, highlight=False)


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
    strategy: StrategyOpt = None,
    cache: Annotated[
        bool,
        typer.Option(help="reuse windows already ranked by this model with the same prompt"),
    ] = True,
    split: BeirSplitOpt = BeirSplitName.test,
    held_out: Annotated[
        Path | None,
        typer.Option(
            help="training data folder (`train build-data`): evaluate only the queries it "
            "held out, so no query a policy was trained on is scored"
        ),
    ] = None,
    run_dir: RunDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rerank first-stage results of a judged dataset: nDCG@10 before and after, with the
    paired bootstrap 95 % interval of the difference."""
    from rearag.eval.rerank import evaluate_rerank
    from rearag.policies.reranker import Reranker

    settings = settings_of(ctx)
    query_ids = None
    if held_out is not None:
        from rearag.rl.data import held_out_queries

        query_ids = held_out_queries(held_out, dataset, split.value)
    reranker = Reranker(
        policy,
        model,
        settings=settings,
        api_base=api_base,
        max_new_tokens=max_new_tokens,
        strategy=strategy,
        cache=cache,
    )
    result = evaluate_rerank(
        dataset,
        settings,
        reranker,
        first_stage=first_stage,
        depth=depth,
        max_queries=queries,
        run_dir=run_dir,
        split=split.value,
        query_ids=query_ids,
        progress=not as_json,
    )
    if as_json:
        print_json(result.model_dump())
        return
    table = Table(
        title=f"{result.policy} ({result.strategy}) on {dataset} ({result.queries} queries)"
    )
    columns = ("first stage", "nDCG@10 before", "nDCG@10 after", "after - before (95 % CI)")
    for col in (*columns, "top kept", "windows", "rounds/query", "cached", "s/query"):
        table.add_column(col)
    table.add_row(
        f"{result.first_stage} top {result.depth}",
        f"{result.ndcg_10_before:.4f}",
        f"{result.ndcg_10_after:.4f}",
        str(result.gain),
        f"{result.top_kept:.0%}",
        ", ".join(f"{k} {v}" for k, v in sorted(result.window_status.items())),
        f"{result.rounds_per_query:.1f}",
        str(result.cached_windows),
        f"{result.seconds_per_query:.1f}",
    )
    out.print(table)
    out.print(f"run file: {result.run_file}", markup=False, highlight=False)
