"""The GRPO rewards on hand-made cases."""

from __future__ import annotations

import pytest

from rearag.policies.registry import get_policy
from rearag.rl.rewards import (
    answer_score,
    completion_text,
    rank_gain,
    reward_functions,
    tag_score,
    window_ndcg,
)

POLICY = get_policy("rearag-reasoning")


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_window_ndcg():
    assert window_ndcg([0, 0, 2], [2, 0, 1]) == pytest.approx(1.0)
    assert window_ndcg([0, 0, 0], [0, 1, 2]) == 0.0
    # relevant at rank 2 of 3: 1/log2(3)
    assert window_ndcg([0, 1, 0], [0, 1, 2]) == pytest.approx(0.6309, abs=1e-4)


def test_rank_gain_is_normalised_and_clipped():
    labels = [0, 1, 0, 2]
    assert rank_gain(labels, [0, 1, 2, 3]) == 0.0  # the input order gains nothing
    assert rank_gain(labels, [3, 1, 0, 2]) == pytest.approx(1.0)  # ideal: all the room
    worse = rank_gain(labels, [0, 2, 1, 3])
    assert -1.0 <= worse < 0
    # Input nearly ideal: a tiny denominator would give a huge negative without the clip.
    assert rank_gain([3, 2, 2, 1, 1, 0], [5, 4, 3, 2, 1, 0]) >= -1.0
    # Already ideal: keeping it scores 0, breaking it scores the plain loss.
    assert rank_gain([2, 1, 0], [0, 1, 2]) == 0.0
    assert rank_gain([2, 1, 0], [2, 1, 0]) == pytest.approx(window_ndcg([2, 1, 0], [2, 1, 0]) - 1)
    assert rank_gain([0, 0, 0], [2, 1, 0]) == 0.0  # nothing relevant


def test_tag_score():
    assert tag_score("<think>a b</think>\n<answer>[2] > [1]</answer>") == 1.0
    assert tag_score("<think>a</think><answer>[2] > [1]</answer> and more text") == 0.5
    assert tag_score("Sure! <think>a</think><answer>[1]</answer>") == 0.5
    assert tag_score("<answer>[1]</answer><think>a</think>") == 0.0
    assert tag_score("<think>a</think><think>b</think><answer>[1]</answer>") == 0.0
    assert tag_score("[2] > [1]") == 0.0


def test_tag_score_of_a_policy_without_reasoning():
    assert tag_score("<answer>[2] > [1]</answer>", think=False) == 1.0
    assert tag_score(" <answer>[2] > [1]</answer>\n", think=False) == 1.0
    assert tag_score("<answer>[2] > [1]</answer> and more", think=False) == 0.5
    assert tag_score("<think>a</think><answer>[1]</answer>", think=False) == 0.0
    assert tag_score("<answer>[1]</answer><answer>[2]</answer>", think=False) == 0.0
    assert tag_score("[2] > [1]", think=False) == 0.0


def test_answer_score_gives_partial_credit_for_coverage():
    assert answer_score("<answer>[3] > [1] > [2]</answer>", 3) == 1.0
    assert answer_score("<answer>[3] > [1]</answer>", 4) == 0.5
    assert answer_score("<answer>[3] > [3] > [1]</answer>", 3) == pytest.approx(1 / 3)
    assert answer_score("<answer>[9] > [1] > [2]</answer>", 2) == pytest.approx(0.5)
    assert answer_score("<answer>3, 1, 2</answer>", 3) == 0.0
    assert answer_score("no answer at all", 3) == 0.0


def test_reward_functions_take_trl_arguments():
    funcs, weights = reward_functions(POLICY)
    assert [f.__name__ for f in funcs] == ["rank", "tags", "answer", "format_valid", "ndcg"]
    assert weights == [0.8, 0.1, 0.1, 0.0, 0.0]
    completions = [
        chat("<think>[2] is about it</think><answer>[2] > [1] > [3]</answer>"),
        chat("I cannot rank these."),
        chat("<think>x</think><answer>[1] > [2] > [3]</answer>"),
    ]
    labels = [[0, 1, 0]] * 3
    kwargs = {"prompts": [[]] * 3, "labels": labels, "query_id": ["q"] * 3}
    rank, tags, answer, valid, ndcg = (f(completions=completions, **kwargs) for f in funcs)
    assert rank == [pytest.approx(1.0), 0.0, 0.0]
    assert tags == [1.0, 0.0, 1.0]
    assert answer == [1.0, 0.0, 1.0]
    assert valid == [1.0, 0.0, 1.0]
    assert ndcg[0] == pytest.approx(1.0) and ndcg[1] == ndcg[2] < 1.0


def test_untrusted_completions_never_raise():
    funcs, _ = reward_functions(POLICY)
    junk = [None, 42, [{"role": "assistant"}], "<answer>[999999999999]</answer>", [{"x": 1}]]
    for f in funcs:
        scores = f(completions=junk, labels=[[1, 0]] * len(junk))
        assert len(scores) == len(junk)
        assert all(-1.0 <= s <= 1.0 for s in scores)
    assert completion_text(None) == ""
