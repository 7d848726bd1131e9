"""Held-out evaluation of a trained policy on test-part windows, built so it cannot fool itself.

Each window is scored in two orders: as stored (shuffled, when the data was built with
`--shuffle`: no position can be right more often than chance) and in first-stage order (what
the reranker sees in the graph). Rows of each table: the input order; the best *constant*
permutation, chosen on the train part in the same order and applied to every test window (a
policy that only learned a position prior scores like it); then every model along the policy's
lineage (base → warm-up → trained) and any other ranker to compare (`compare`: a policy with
its model, e.g. query likelihood), each run through the same `Reranker` as at inference.

Per system: window nDCG@10, rank reward (the normalised gain GRPO optimises), the paired
bootstrap 95 % interval of its nDCG@10 gain over the input order and over the constant, how
often the first input passage stays first, the format-valid rate and how many distinct
permutations it produced; a warm-up or trained model also against its base model (did the
training help, not only the model?). A system is better only when both intervals are above zero.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, computed_field
from tqdm import tqdm

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError
from rearag.eval.stats import Interval, paired_bootstrap
from rearag.policies.registry import get_policy
from rearag.policies.reranker import Reranker
from rearag.rl.data import load_split
from rearag.rl.registry import lineage, load_manifest, write_manifest
from rearag.rl.rewards import rank_gain, window_ndcg

EXHAUSTIVE_UP_TO = 7  # 7! = 5040 permutations; larger windows use a local search
WindowOrder = Literal["stored", "first-stage"]


class SystemScore(BaseModel):
    system: str
    model: str | None = None
    policy: str | None = None
    ndcg_10: float
    rank_reward: float
    vs_input: Interval  # nDCG@10 gain over the input order, per window
    vs_constant: Interval  # … and over the best constant permutation
    vs_base: Interval | None = None  # a trained model's gain over the model it started from
    first_kept: float  # share of windows whose first input passage stays first
    format_valid: float | None = None
    distinct_permutations: int
    windows: int
    seconds_per_window: float | None = None

    @computed_field  # in --json output and stored results too
    @property
    def better(self) -> bool:
        return self.vs_input.above_zero and self.vs_constant.above_zero


class OrderScores(BaseModel):
    order: str  # "shuffled", "first-stage" (or "stored" for data kept in first-stage order)
    windows: int
    constant_permutation: list[int]  # 1-based, as a model would write it
    systems: list[SystemScore]


class TrainEvalResult(BaseModel):
    name: str
    data: str
    windows: int
    orders: list[OrderScores]

    def markdown(self) -> str:
        """The tables as Markdown, for results files."""
        lines = []
        for scores in self.orders:
            constant = " > ".join(f"[{i}]" for i in scores.constant_permutation)
            lines += [
                f"{scores.windows} held-out windows, {scores.order} order (best constant "
                f"permutation on train: {constant}):",
                "",
                "| system | model | nDCG@10 | vs input (95 % CI) | vs constant (95 % CI) "
                "| vs base (95 % CI) | better | first kept | format valid | perms | s/window |",
                "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
                *(
                    f"| {s.system} | {f'`{s.model}`' if s.model else '—'} | {s.ndcg_10:.4f} "
                    f"| {s.vs_input} | {s.vs_constant} | {s.vs_base or '—'} "
                    f"| {'**yes**' if s.better else 'no'} "
                    f"| {s.first_kept:.0%} "
                    f"| {'—' if s.format_valid is None else f'{s.format_valid:.0%}'} "
                    f"| {s.distinct_permutations} "
                    f"| {'—' if s.seconds_per_window is None else f'{s.seconds_per_window:.2f}'} |"
                    for s in scores.systems
                ),
                "",
            ]
        return "\n".join(lines)


def mean_ndcg(labels: list[list[int]], order: list[int]) -> float:
    return sum(window_ndcg(lab, order) for lab in labels) / max(1, len(labels))


def best_constant_permutation(labels: list[list[int]], n: int) -> list[int]:
    """The one order of `n` positions with the highest mean nDCG@10 over these windows."""
    if n <= EXHAUSTIVE_UP_TO:
        return list(max(itertools.permutations(range(n)), key=lambda p: mean_ndcg(labels, p)))
    best, score = list(range(n)), mean_ndcg(labels, list(range(n)))
    improved = True
    while improved:  # first-improvement hill climbing over swaps
        improved = False
        for i, j in itertools.combinations(range(n), 2):
            trial = best.copy()
            trial[i], trial[j] = trial[j], trial[i]
            trial_score = mean_ndcg(labels, trial)
            if trial_score > score + 1e-12:
                best, score, improved = trial, trial_score, True
    return best


def spread(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """The first `limit` rows taken round-robin over queries, so a small sample still covers
    many queries."""
    by_query: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_query.setdefault(row["query_id"], []).append(row)
    mixed = [r for group in itertools.zip_longest(*by_query.values()) for r in group if r]
    return mixed[:limit] if limit else mixed


def in_first_stage_order(row: dict[str, Any]) -> dict[str, Any]:
    """The row's window with its passages (and labels, ids) sorted by first-stage rank. Rows
    built before ranks were kept are in first-stage order already."""
    ranks = row.get("ranks")
    if not ranks:
        return row
    idx = sorted(range(len(ranks)), key=lambda i: ranks[i])
    fields = ("passages", "labels", "doc_ids", "ranks")
    return {**row, **{f: [row[f][i] for i in idx] for f in fields if f in row}}


def score_system(
    system: str,
    rows: list[dict[str, Any]],
    orders: list[list[int]],
    constant: list[list[int]],
    base: list[list[int]] | None = None,
    **extra: Any,
) -> SystemScore:
    """`orders` scored against the input order, the constant and, given, the `base` model's."""
    labels = [r["labels"] for r in rows]

    def per_window(these: list[list[int]]) -> list[float]:
        return [window_ndcg(lab, o) for lab, o in zip(labels, these, strict=True)]

    ndcg = per_window(orders)
    identity = per_window([list(range(len(lab))) for lab in labels])
    fixed = per_window(constant)
    return SystemScore(
        system=system,
        ndcg_10=sum(ndcg) / len(rows),
        rank_reward=sum(rank_gain(lab, o) for lab, o in zip(labels, orders, strict=True))
        / len(rows),
        vs_input=paired_bootstrap(ndcg, identity),
        vs_constant=paired_bootstrap(ndcg, fixed),
        vs_base=paired_bootstrap(ndcg, per_window(base)) if base else None,
        first_kept=sum(o[0] == 0 for o in orders) / len(rows),
        distinct_permutations=len({tuple(o) for o in orders}),
        windows=len(rows),
        **extra,
    )


def run_model(
    settings: Settings,
    model: str,
    policy: str,
    rows: list[dict[str, Any]],
    max_chars: int,
    max_new_tokens: int,
    progress: bool,
) -> tuple[list[list[int]], float, float]:
    """(orders, format-valid rate, seconds per window) of `model` on the rows' windows."""
    orders: list[list[int]] = []
    statuses: Counter[str] = Counter()
    began = time.perf_counter()
    rerankers: dict[int, Reranker] = {}
    for row in tqdm(rows, desc=f"{policy} {model}", unit="window", disable=not progress):
        n = len(row["labels"])
        if n not in rerankers:
            rerankers[n] = Reranker(
                policy,
                model,
                settings=settings,
                window=n,
                step=n - 1,
                depth=n,
                max_passage_chars=max_chars,
                max_new_tokens=max_new_tokens,
                cache=True,  # the base model's windows are the same on every evaluation
            )
        ranked = rerankers[n].rank(row["query"], row["passages"], list(map(str, range(n))))
        orders.append([int(r.doc_id) for r in ranked.results])
        statuses.update(w.status for w in ranked.windows)
    valid = statuses["ok"] / max(1, sum(statuses.values()))
    return orders, valid, (time.perf_counter() - began) / max(1, len(rows))


def evaluate_policy(
    settings: Settings,
    name: str,
    data: Path,
    *,
    limit: int | None = None,
    max_new_tokens: int | None = None,
    models: list[str] | None = None,
    compare: list[tuple[str, str]] | None = None,
    orders: tuple[WindowOrder, ...] = ("stored", "first-stage"),
    progress: bool = True,
) -> TrainEvalResult:
    """Score the policy `name` (and its lineage, or `models`; and each `(policy, model)` of
    `compare`) on the test part of `data` (the data folder or its `test` folder); the result is
    also stored in its manifest, under the data folder."""
    if (limit is not None and limit < 1) or (max_new_tokens is not None and max_new_tokens < 1):
        raise InvalidInputError("--limit and --max-new-tokens must be at least 1")
    manifest = load_manifest(settings, name)
    folder = data.parent if data.name in ("train", "test") else data
    test, data_manifest = load_split(folder, "test")
    train, _ = load_split(folder, "train")
    # A likelihood policy reads only queries and passages: any data serves.
    reads_prompts = get_policy(manifest.policy).kind != "likelihood"
    if reads_prompts and data_manifest.policy != manifest.policy:
        raise InvalidInputError(
            f"{folder} was built for policy {data_manifest.policy}; {name} was trained with "
            f"{manifest.policy}"
        )
    test_rows = spread(list(test), limit)
    if not test_rows:
        raise InvalidInputError(f"{folder}/test has no rows to evaluate")
    n = data_manifest.window
    budget = max_new_tokens or 64 + 6 * n  # the training completion budget
    systems: list[tuple[str, str, str]] = []  # (kind, policy, model)
    for ref in models or lineage(settings, name):
        kind = "base"
        if ref.startswith("policy:"):
            method = load_manifest(settings, ref.removeprefix("policy:")).method
            # SFT warms a ranking policy up for GRPO; a likelihood policy it trains outright.
            kind = "warm-up" if method == "sft" and reads_prompts else "trained"
        systems.append((kind, manifest.policy, ref))
    systems += [(policy, policy, model) for policy, model in compare or []]
    scored = []
    # Data kept in first-stage order has one order to score.
    for order in orders if data_manifest.shuffled else ("stored",):
        view = in_first_stage_order if order == "first-stage" else dict
        rows = [view(r) for r in test_rows]
        train_labels = [view(r)["labels"] for r in train if len(r["labels"]) == n]
        constant = best_constant_permutation(train_labels, n) if train_labels else list(range(n))
        fixed = [constant if len(r["labels"]) == n else list(range(len(r["labels"]))) for r in rows]
        table = [
            score_system("input order", rows, [list(range(len(r["labels"]))) for r in rows], fixed),
            score_system("best constant (train)", rows, fixed, fixed),
        ]
        base: list[list[int]] | None = None
        for kind, policy, model in systems:
            ranked, valid, seconds = run_model(
                settings, model, policy, rows, data_manifest.max_passage_chars, budget, progress
            )
            table.append(
                score_system(
                    kind,
                    rows,
                    ranked,
                    fixed,
                    base=base if kind in ("warm-up", "trained") else None,
                    model=model,
                    policy=policy,
                    format_valid=valid if policy == manifest.policy else None,
                    seconds_per_window=seconds,
                )
            )
            if kind == "base":
                base = ranked
        label = "shuffled" if data_manifest.shuffled and order == "stored" else order
        scored.append(
            OrderScores(
                order=label if data_manifest.shuffled else "first-stage",
                windows=len(rows),
                constant_permutation=[i + 1 for i in constant],
                systems=table,
            )
        )
    result = TrainEvalResult(name=name, data=str(folder), windows=len(test_rows), orders=scored)
    manifest.held_out = {**(manifest.held_out or {}), str(folder.resolve()): result.model_dump()}
    write_manifest(settings, manifest)
    return result
