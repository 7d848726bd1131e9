"""Held-out evaluation of a trained policy on test-split windows.

Rows of the table: the input (first-stage) order; the best *constant* permutation, chosen on
the train split and applied to every test window (a policy that only learned a position prior
scores like it); then every model along the policy's lineage (base → warm-up → trained), each
run through the same `Reranker` as at inference. Columns: window nDCG@10, rank reward (the
normalised gain GRPO optimises), format-valid rate, and how many distinct permutations the
model produced.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tqdm import tqdm

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError
from rearag.policies.reranker import Reranker
from rearag.rl.data import load_split
from rearag.rl.registry import lineage, load_manifest, write_manifest
from rearag.rl.rewards import rank_gain, window_ndcg

EXHAUSTIVE_UP_TO = 7  # 7! = 5040 permutations; larger windows use a local search


class SystemScore(BaseModel):
    system: str
    model: str | None = None
    ndcg_10: float
    rank_reward: float
    format_valid: float | None = None
    distinct_permutations: int
    windows: int
    seconds_per_window: float | None = None


class TrainEvalResult(BaseModel):
    name: str
    data: str
    windows: int
    constant_permutation: list[int]  # 1-based, as a model would write it
    systems: list[SystemScore]


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


def _score(
    system: str, rows: list[dict[str, Any]], orders: list[list[int]], **extra: Any
) -> SystemScore:
    return SystemScore(
        system=system,
        ndcg_10=sum(window_ndcg(r["labels"], o) for r, o in zip(rows, orders, strict=True))
        / len(rows),
        rank_reward=sum(rank_gain(r["labels"], o) for r, o in zip(rows, orders, strict=True))
        / len(rows),
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
    for row in tqdm(rows, desc=model, unit="window", disable=not progress):
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
    progress: bool = True,
) -> TrainEvalResult:
    """Score the policy `name` (and its lineage, or `models`) on the test split of `data`
    (the data folder or its `test` folder); the result is also stored in its manifest."""
    if (limit is not None and limit < 1) or (max_new_tokens is not None and max_new_tokens < 1):
        raise InvalidInputError("--limit and --max-new-tokens must be at least 1")
    manifest = load_manifest(settings, name)
    folder = data.parent if data.name in ("train", "test") else data
    test, data_manifest = load_split(folder, "test")
    train, _ = load_split(folder, "train")
    if data_manifest.policy != manifest.policy:
        raise InvalidInputError(
            f"{folder} was built for policy {data_manifest.policy}; {name} was trained with "
            f"{manifest.policy}"
        )
    rows = spread(list(test), limit)
    if not rows:
        raise InvalidInputError(f"{folder}/test has no rows to evaluate")
    n = data_manifest.window
    train_labels = [r["labels"] for r in train if len(r["labels"]) == n]
    constant = best_constant_permutation(train_labels, n) if train_labels else list(range(n))
    systems = [
        _score("input order", rows, [list(range(len(r["labels"]))) for r in rows]),
        _score(
            "best constant (train)",
            rows,
            [constant if len(r["labels"]) == n else list(range(len(r["labels"]))) for r in rows],
        ),
    ]
    budget = max_new_tokens or 64 + 6 * n  # the training completion budget
    refs = models or lineage(settings, name)
    for ref in refs:
        kind = "base"
        if ref.startswith("policy:"):
            method = load_manifest(settings, ref.removeprefix("policy:")).method
            kind = {"sft": "warm-up", "grpo": "trained"}[method]
        orders, valid, seconds = run_model(
            settings, ref, manifest.policy, rows, data_manifest.max_passage_chars, budget, progress
        )
        systems.append(
            _score(
                kind,
                rows,
                orders,
                model=ref,
                format_valid=valid,
                seconds_per_window=seconds,
            )
        )
    result = TrainEvalResult(
        name=name,
        data=str(folder),
        windows=len(rows),
        constant_permutation=[i + 1 for i in constant],
        systems=systems,
    )
    manifest.held_out = result.model_dump()
    write_manifest(settings, manifest)
    return result
