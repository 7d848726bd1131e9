"""The SFT warm-up: its targets are what the GRPO rewards want, and its examples put the best
passage in every position."""

from __future__ import annotations

import pytest

from rearag.policies.registry import get_policy
from rearag.rl.rewards import reward_functions
from rearag.rl.sft import pick_examples, target_order, target_text

POLICY = get_policy("rearag-reasoning")


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_warm_up_targets_are_what_the_rewards_want():
    labels = [0, 2, 0, 1, 0]
    passages = [f"passage number {i} text" for i in range(5)]
    text = target_text("a query", passages, labels)
    assert target_order(labels) == [1, 3, 0, 2, 4]
    parsed = POLICY.parse(text, 5)
    assert parsed.status == "ok" and parsed.order == [1, 3, 0, 2, 4]
    funcs, _ = reward_functions(POLICY)
    rank, tags, answer = (f(completions=[chat(text)], labels=[labels])[0] for f in funcs[:3])
    assert (rank, tags, answer) == (pytest.approx(1.0), 1.0, 1.0)
    assert "passage number 1" in text  # the reasoning names the relevant passage's content


def test_warm_up_examples_put_the_best_passage_everywhere():
    rows = [
        {"labels": [0] * i + [1] + [0] * (4 - i), "id": (i, k)} for i in range(5) for k in range(9)
    ]
    picked = pick_examples(rows, 10, seed=0)
    assert len(picked) == 10
    assert {target_order(r["labels"])[0] for r in picked} == set(range(5))


def test_a_policy_without_reasoning_is_warmed_up_on_the_answer_alone():
    direct = get_policy("rearag-direct")
    labels = [0, 0, 1, 0]
    text = target_text("q", ["a", "b", "c", "d"], labels, think=direct.think)
    assert text == "<answer>[3] > [1] > [2] > [4]</answer>"
    assert direct.parse(text, 4).status == "ok"
    funcs, _ = reward_functions(direct)
    rank, tags, answer = (f(completions=[chat(text)], labels=[labels])[0] for f in funcs[:3])
    assert (rank, tags, answer) == (pytest.approx(1.0), 1.0, 1.0)
