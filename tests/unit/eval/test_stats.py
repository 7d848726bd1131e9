"""The paired bootstrap interval on hand-made scores."""

import pytest

from rearag.eval.stats import paired_bootstrap


def test_a_constant_gain_has_a_zero_width_interval_at_that_gain():
    got = paired_bootstrap([0.5, 0.7, 0.9], [0.25, 0.45, 0.65])
    assert (got.mean, got.low, got.high, got.n) == pytest.approx((0.25, 0.25, 0.25, 3))
    assert got.above_zero
    assert str(got) == "+0.2500 [+0.2500, +0.2500]"


def test_the_interval_holds_the_mean_and_lies_within_the_extreme_differences():
    # differences: +1, 0, 0, -1 → mean 0; resampled means range over [-1, 1]
    got = paired_bootstrap([1.0, 0.5, 0.5, 0.0], [0.0, 0.5, 0.5, 1.0])
    assert got.mean == 0.0
    assert -1.0 <= got.low < 0.0 < got.high <= 1.0
    assert not got.above_zero


def test_mostly_positive_differences_give_an_interval_above_zero_and_it_is_seeded():
    a = [1.0] * 18 + [0.0, 0.0]
    b = [0.0] * 20
    got = paired_bootstrap(a, b)
    assert got.mean == pytest.approx(0.9)
    assert 0.7 < got.low < 0.9 < got.high <= 1.0
    assert paired_bootstrap(a, b) == got  # same scores, same interval


def test_an_empty_or_unpaired_input():
    assert paired_bootstrap([], []).n == 0
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap([1.0], [1.0, 2.0])
