"""`rearag train build-data|sft|grpo|eval` and `rearag policies list|show|delete`."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from rearag.cli.common import (
    BeirArg,
    BeirSplitName,
    BeirSplitOpt,
    JsonOpt,
    PolicyName,
    out,
    print_json,
    settings_of,
)
from rearag.core.config import SearchMode
from rearag.core.errors import InvalidInputError
from rearag.policies.registry import POLICIES

if TYPE_CHECKING:
    from rearag.rl.evaluate import TrainEvalResult

train_app = typer.Typer(
    help="Fine-tune the reranker policy: build data, warm up (SFT), GRPO, evaluate.",
    no_args_is_help=True,
)
policies_app = typer.Typer(
    help="Trained reranker policies (use as --model policy:NAME).", no_args_is_help=True
)


class SplitName(StrEnum):
    """rearag.rl.data.SPLITS (the parts of built data), spelled out: importing rl.data would
    load chromadb for --help."""

    train = "train"
    test = "test"


class EvalOrder(StrEnum):
    both = "both"
    shuffled = "shuffled"
    first_stage = "first-stage"


DATA_POLICY = PolicyName("rearag-reasoning")  # build_data's own default

DataOpt = Annotated[Path, typer.Option("--data", help="folder written by `train build-data`")]
TrainDataOpt = Annotated[
    list[Path],
    typer.Option(
        "--data",
        help="folder written by `train build-data`; repeatable: the train parts are joined",
    ),
]
StartModelOpt = Annotated[
    str, typer.Option("--model", help="model to start from: local:, hf: or policy:NAME")
]
OutOpt = Annotated[str, typer.Option("--out", help="name of the trained policy")]
LoraOpt = Annotated[bool, typer.Option("--lora", help="train LoRA adapters (merged when saved)")]


@train_app.command("build-data")
def build_data_cmd(
    ctx: typer.Context,
    dataset: BeirArg,
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write (must not exist)")],
    policy: Annotated[
        PolicyName, typer.Option(help="policy whose prompt the rows use")
    ] = DATA_POLICY,
    first_stage: Annotated[SearchMode, typer.Option(help="first-stage retrieval")] = (
        SearchMode.hybrid
    ),
    depth: Annotated[int, typer.Option(help="first-stage candidates per query")] = 100,
    window: Annotated[int, typer.Option(help="passages per training window")] = 20,
    samples_per_query: Annotated[int, typer.Option(help="windows sampled per query")] = 50,
    split: BeirSplitOpt = BeirSplitName.test,
    part: Annotated[
        list[SplitName] | None,
        typer.Option(help="part to write, train or test, repeatable (default: both)"),
    ] = None,
    shuffle: Annotated[
        bool,
        typer.Option(
            help="shuffle each window's passages (labels follow), so no position prior can "
            "win and only relevance pays"
        ),
    ] = False,
    test_fraction: Annotated[float, typer.Option(help="share of queries held out")] = 0.33,
    seed: Annotated[int, typer.Option(help="split and sampling seed")] = 0,
    min_relevant: Annotated[
        int, typer.Option(help="keep windows with at least this many relevant passages")
    ] = 1,
    max_passage_chars: Annotated[
        int | None, typer.Option(help="cut passages to this (default: reranker setting)")
    ] = None,
    queries: Annotated[int | None, typer.Option(help="use only the first N queries")] = None,
    as_json: JsonOpt = False,
) -> None:
    """First-stage retrieval for every judged query, then sampled windows with labels."""
    from rearag.rl.data import SPLITS, build_data

    manifest = build_data(
        dataset,
        out_dir,
        settings_of(ctx),
        policy=policy,
        first_stage=first_stage,
        depth=depth,
        window=window,
        samples_per_query=samples_per_query,
        splits=tuple(part or SPLITS),  # type: ignore[arg-type]
        test_fraction=test_fraction,
        seed=seed,
        min_relevant=min_relevant,
        max_passage_chars=max_passage_chars,
        max_queries=queries,
        beir_split=split.value,
        shuffle=shuffle,
        progress=not as_json,
    )
    if as_json:
        print_json(manifest.model_dump())
        return
    for name, stats in manifest.splits.items():
        out.print(
            f"{name}: {stats.rows} windows from {stats.queries} queries "
            f"({stats.mean_relevant:.1f} relevant per window)",
            markup=False,
        )
    out.print(f"written to {out_dir} in {manifest.seconds:.0f} s", markup=False, highlight=False)


@train_app.command("sft")
def sft_cmd(
    ctx: typer.Context,
    data: TrainDataOpt,
    model: StartModelOpt,
    name: OutOpt,
    examples: Annotated[int, typer.Option(help="warm-up examples from the train split")] = 40,
    epochs: Annotated[float, typer.Option(help="passes over the examples")] = 1.0,
    learning_rate: Annotated[float, typer.Option(help="AdamW learning rate")] = 5e-5,
    batch_size: Annotated[int, typer.Option(help="examples per optimizer step")] = 2,
    lora: LoraOpt = False,
    lora_rank: Annotated[int, typer.Option(help="LoRA rank (alpha is twice it)")] = 16,
    policy: Annotated[
        PolicyName | None,
        typer.Option(
            help="policy to train (default: the data's; query-likelihood trains UPR on the "
            "relevant pairs of any data)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="example choice and training seed")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Supervised warm-up: teach the output format before GRPO, or train a query-likelihood
    ranker (train split only)."""
    from rearag.rl.sft import train_sft

    result = train_sft(
        settings_of(ctx),
        data,
        model,
        name,
        examples=examples,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        lora=lora,
        lora_rank=lora_rank,
        policy=policy,
        seed=seed,
        progress=not as_json,
    )
    if as_json:
        print_json(result.model_dump())
        return
    loss = f"{result.final_loss:.3f}" if result.final_loss is not None else "n/a"
    what = "trained" if POLICIES[result.policy].kind == "likelihood" else "warm-up"
    out.print(
        f"{what} {result.name}: {result.examples} examples, {result.steps} steps, last loss "
        f"{loss}, {result.seconds:.0f} s → use --policy {result.policy} --model "
        f"policy:{result.name}",
        markup=False,
        highlight=False,
    )


@train_app.command("grpo")
def grpo_cmd(
    ctx: typer.Context,
    data: TrainDataOpt,
    model: StartModelOpt,
    name: OutOpt,
    policy: Annotated[
        PolicyName | None,
        typer.Option(help="policy prompt (default: the one the data was built for)"),
    ] = None,
    lora: LoraOpt = False,
    steps: Annotated[int | None, typer.Option(help="optimizer steps (default: one epoch)")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML with [grpo] (any GRPOConfig field), [rewards], [lora]")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from the run's last checkpoint")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="print the resolved config, data stats and launch command")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """GRPO with TRL: reward = nDCG gain of the produced permutation (+ format)."""
    from rearag.rl.grpo import plan_grpo, train_grpo

    settings = settings_of(ctx)
    plan, _ = plan_grpo(
        settings,
        data,
        model,
        name,
        policy=policy,
        lora=lora,
        steps=steps,
        config=config,
        resume=resume,
        argv=[a for a in sys.argv[1:] if a != "--dry-run"],  # the plan's launch command
    )
    if dry_run:
        if as_json:
            print_json(plan.model_dump())
            return
        import tomli_w

        out.print(tomli_w.dumps(plan.model_dump(exclude_none=True)), markup=False, highlight=False)
        return
    result = train_grpo(plan, settings, progress=not as_json)
    if as_json:
        print_json(result.model_dump())
        return
    last = result.last
    out.print(
        f"GRPO {result.name}: {result.steps} steps, {result.seconds_per_step:.1f} s/step; last "
        f"reward {last.get('reward', float('nan')):.3f}, format valid "
        f"{last.get('rewards/format_valid/mean', float('nan')):.2f} → use --model "
        f"policy:{result.name}",
        markup=False,
        highlight=False,
    )
    out.print(f"curves: {result.folder}/curves.png", markup=False, highlight=False)


@train_app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="trained policy")],
    data: DataOpt,
    limit: Annotated[int | None, typer.Option(help="evaluate the first N test windows")] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(help="generation budget (default: the training budget)")
    ] = None,
    model: Annotated[
        list[str] | None, typer.Option(help="models to compare (default: the policy's lineage)")
    ] = None,
    compare: Annotated[
        list[str] | None,
        typer.Option(
            help="another ranker to score beside it, POLICY=MODEL, repeatable (e.g. "
            "query-likelihood=local:smollm2-135m-instruct, first-token=policy:NAME)"
        ),
    ] = None,
    order: Annotated[
        EvalOrder, typer.Option(help="window orders to score (shuffled data: both by default)")
    ] = EvalOrder.both,
    as_json: JsonOpt = False,
) -> None:
    """Held-out tables: input order, best constant permutation, base, warm-up, trained, with
    paired bootstrap intervals of each gain."""
    from rearag.rl.evaluate import evaluate_policy

    pairs = []
    for item in compare or []:
        policy, sep, ref = item.partition("=")
        if not sep or policy not in POLICIES or not ref:
            raise InvalidInputError(
                f"--compare {item!r}: write POLICY=MODEL with POLICY one of {', '.join(POLICIES)}"
            )
        pairs.append((policy, ref))
    result = evaluate_policy(
        settings_of(ctx),
        name,
        data,
        limit=limit,
        max_new_tokens=max_new_tokens,
        models=model,
        compare=pairs,
        orders={
            EvalOrder.both: ("stored", "first-stage"),
            EvalOrder.shuffled: ("stored",),
            EvalOrder.first_stage: ("first-stage",),
        }[order],
        progress=not as_json,
    )
    if as_json:
        print_json(result.model_dump())
        return
    print_eval_table(result)


EVAL_COLUMNS = (
    "system",
    "model",
    "nDCG@10",
    "vs input (95 % CI)",
    "vs constant (95 % CI)",
    "vs base (95 % CI)",
    "better",
    "first kept",
    "format ok",
    "perms",
    "s/window",
)


def print_eval_table(result: TrainEvalResult) -> None:
    # Wider than a pipe's default 80 columns: intervals and model names should not be squeezed.
    console = Console(width=max(out.width, 210))
    for scores in result.orders:
        table = Table(
            title=f"{result.name}: {scores.windows} held-out windows of {result.data}, "
            f"{scores.order} order"
        )
        for col in EVAL_COLUMNS:
            table.add_column(col, no_wrap=col != "model")
        for s in scores.systems:
            table.add_row(
                s.system,
                s.model or "",
                f"{s.ndcg_10:.4f}",
                str(s.vs_input),
                str(s.vs_constant),
                str(s.vs_base or ""),
                "yes" if s.better else "no",
                f"{s.first_kept:.0%}",
                "" if s.format_valid is None else f"{s.format_valid:.0%}",
                str(s.distinct_permutations),
                "" if s.seconds_per_window is None else f"{s.seconds_per_window:.2f}",
            )
        console.print(table)
        constant = " > ".join(f"[{i}]" for i in scores.constant_permutation)
        out.print(f"best constant permutation (train): {constant}", markup=False, highlight=False)


@policies_app.command("list")
def policies_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Trained policies with their method, base model and steps."""
    from rearag.rl.registry import list_policies

    found = list_policies(settings_of(ctx))
    if as_json:
        print_json([m.model_dump() for m in found])
        return
    if not found:
        out.print("no trained policy yet: see `rearag train --help`", markup=False)
    for m in found:
        out.print(
            f"{m.name}\t{m.method}\t{m.policy}\tfrom {m.base_model}\t{m.steps} steps\t{m.created}",
            markup=False,
            highlight=False,
        )


@policies_app.command("show")
def policies_show(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], as_json: JsonOpt = False
) -> None:
    """A policy's manifest: lineage, data fingerprint, held-out metrics."""
    from rearag.rl.registry import load_manifest

    manifest = load_manifest(settings_of(ctx), name)
    if as_json:
        print_json(manifest.model_dump())
        return
    from pydantic import ValidationError

    from rearag.rl.evaluate import TrainEvalResult

    for key, value in manifest.model_dump(exclude={"held_out"}).items():
        out.print(f"{key}: {value}", markup=False, highlight=False)
    shown = False
    for result in (manifest.held_out or {}).values():
        try:
            print_eval_table(TrainEvalResult.model_validate(result))
            shown = True
        except ValidationError:  # an evaluation stored by an older rearag: re-run it
            continue
    if not shown:
        out.print(f"held_out: not evaluated (run `rearag train eval {name} --data DIR`)")


@policies_app.command("delete")
def policies_delete(
    ctx: typer.Context, name: Annotated[str, typer.Argument()], as_json: JsonOpt = False
) -> None:
    """Delete a trained policy."""
    from rearag.rl.registry import delete_policy

    delete_policy(settings_of(ctx), name)
    if as_json:
        print_json({"deleted": name})
    else:
        out.print(f"deleted {name}", markup=False)
