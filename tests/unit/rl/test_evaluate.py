"""The held-out evaluation's helpers: the best constant permutation baseline and the
round-robin spread of rows over queries."""

from __future__ import annotations

from rearag.rl.evaluate import best_constant_permutation, spread


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
