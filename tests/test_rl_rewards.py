"""The GRPO rewards on hand-made cases, and the warm-up targets they should score highly."""

from __future__ import annotations

import pytest

from rearag.policies.registry import get_policy
from rearag.rl.evaluate import best_constant_permutation, spread
from rearag.rl.rewards import (
    answer_score,
    completion_text,
    rank_gain,
    reward_functions,
    tag_score,
    window_ndcg,
)
from rearag.rl.sft import pick_examples, target_order, target_text

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


def test_best_constant_permutation_finds_the_position_prior():
    # Relevant passages sit mostly in position 3: the best fixed order puts it first.
    labels = [[0, 0, 1, 0], [0, 0, 1, 0], [1, 0, 0, 0]]
    assert best_constant_permutation(labels, 4)[0] == 2
    big = [[0] * 7 + [1] + [0] * 2] * 3  # n > 7: local search
    assert best_constant_permutation(big, 10)[0] == 7


def test_spread_takes_rows_round_robin_over_queries():
    rows = [{"query_id": q, "k": k} for q in "abc" for k in range(3)]
    assert [r["query_id"] for r in spread(rows, 4)] == ["a", "b", "c", "a"]
    assert len(spread(rows, None)) == 9
