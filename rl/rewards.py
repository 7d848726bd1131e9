"""Rewards for GRPO (REARANK's): plain functions with TRL's reward signature,
`f(completions, labels, **columns) -> list[float]`.

- rank: the nDCG@10 gain of the parsed permutation over the input order, normalised by the
  gain still possible, (after - before) / (ideal - before), clipped to [-1, 1] (a tiny
  denominator would otherwise let one bad permutation swamp the group). A window already in
  ideal order scores the plain loss, after - before (0 for keeping it): without that, such
  windows reward nothing and the policy learns that the first passage is never the best.
  0 when the window has no relevant passage.
- tags: `<think>…</think><answer>…</answer>` once each, in order, nothing after: 1; both
  blocks in order but with text around them: 0.5; else 0. For a policy without reasoning
  (`think=False`) the same over `<answer>…</answer>` alone.
- answer: the `<answer>` is `[i] > [j] > …` over the window's ids: the share of ids covered,
  halved when the list is malformed, repeats an id or names one outside the window.

Two more are logged with weight 0, so the curves show them: `format_valid` (the parser read a
complete permutation) and `ndcg` (the window's nDCG@10 after ranking).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from rearag.policies.policy import Policy

RewardFn = Callable[..., list[float]]

_TAGS_EXACT = re.compile(
    r"^\s*<think>(?:(?!</?think>).)*</think>\s*<answer>(.*?)</answer>\s*$", re.S
)
_ANSWER_EXACT = re.compile(r"^\s*<answer>((?:(?!</?answer>).)*)</answer>\s*$", re.S)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S)
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.S)
_CHAIN = re.compile(r"^\s*\[\d+\](?:\s*>\s*\[\d+\])*\s*$")
_ID = re.compile(r"\[(\d{1,6})\]")


def window_ndcg(labels: list[int], order: list[int], k: int = 10) -> float:
    """nDCG@k of the window ranked as `order` (0-based positions, best first), with linear
    gains as trec_eval and ir-measures use; 0 when the window has no relevant passage."""
    ideal = _dcg(sorted(labels, reverse=True), k)
    return _dcg([labels[i] for i in order], k) / ideal if ideal > 0 else 0.0


def _dcg(gains: list[int], k: int) -> float:
    return sum(g / math.log2(r + 2) for r, g in enumerate(gains[:k]) if g > 0)


def rank_gain(labels: list[int], order: list[int]) -> float:
    if not any(g > 0 for g in labels):
        return 0.0
    before = window_ndcg(labels, list(range(len(labels))))
    gain = window_ndcg(labels, order) - before
    room = 1.0 - before
    if room <= 1e-9:
        return gain
    return max(-1.0, min(1.0, gain / room))


def tag_score(text: str, think: bool = True) -> float:
    if (_TAGS_EXACT if think else _ANSWER_EXACT).match(text):
        return 1.0
    thoughts = [m.start() for m in _THINK_BLOCK.finditer(text)]
    answer = [m.start() for m in _ANSWER_BLOCK.finditer(text)]
    if not think:
        return 0.5 if len(answer) == 1 and not thoughts else 0.0
    if len(thoughts) == 1 and len(answer) == 1 and thoughts[0] < answer[0]:
        return 0.5
    return 0.0


def answer_score(text: str, n: int) -> float:
    found = _ANSWER_BLOCK.search(text)
    if not found:
        return 0.0
    ids = [int(i) for i in _ID.findall(found.group(1))]
    valid = {i for i in ids if 1 <= i <= n}
    coverage = len(valid) / n
    clean = bool(_CHAIN.match(found.group(1))) and len(valid) == len(ids)
    return coverage if clean else coverage / 2


def completion_text(completion: Any) -> str:
    """TRL passes chat completions as `[{"role": "assistant", "content": …}]`."""
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    return completion if isinstance(completion, str) else ""


def reward_functions(
    policy: Policy, weights: tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> tuple[list[RewardFn], list[float]]:
    """The reward functions for `policy` and their weights, in TRL's `reward_weights` order."""

    def orders(completions: list[Any], labels: list[list[int]]) -> list[tuple[list[int], str]]:
        out = []
        for c, lab in zip(completions, labels, strict=True):
            parsed = policy.parse(completion_text(c), len(lab))
            out.append((parsed.order, parsed.status))
        return out

    def rank(completions: list[Any], labels: list[list[int]], **_: Any) -> list[float]:
        return [
            rank_gain(lab, order)
            for (order, _s), lab in zip(orders(completions, labels), labels, strict=True)
        ]

    def tags(completions: list[Any], **_: Any) -> list[float]:
        return [tag_score(completion_text(c), policy.think) for c in completions]

    def answer(completions: list[Any], labels: list[list[int]], **_: Any) -> list[float]:
        return [
            answer_score(completion_text(c), len(lab))
            for c, lab in zip(completions, labels, strict=True)
        ]

    def format_valid(completions: list[Any], labels: list[list[int]], **_: Any) -> list[float]:
        return [float(status == "ok") for _o, status in orders(completions, labels)]

    def ndcg(completions: list[Any], labels: list[list[int]], **_: Any) -> list[float]:
        return [
            window_ndcg(lab, order)
            for (order, _s), lab in zip(orders(completions, labels), labels, strict=True)
        ]

    return [rank, tags, answer, format_valid, ndcg], [*weights, 0.0, 0.0]
