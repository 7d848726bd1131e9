"""Paired bootstrap intervals: is one system better than another on the same queries?

Both systems are scored on the same items (queries or windows), so the question is about the
per-item differences. Resampling the items with replacement and taking the mean difference of
each resample gives the distribution of the mean; its 2.5th and 97.5th percentiles are the 95 %
interval. A system counts as better only when the whole interval is above zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel

RESAMPLES = 10_000


class Interval(BaseModel):
    mean: float
    low: float
    high: float
    n: int

    @property
    def above_zero(self) -> bool:
        return self.low > 0

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The mean of `a[i] - b[i]` with its bootstrap `confidence` interval (percentile method,
    seeded: the same scores always give the same interval)."""
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} and {len(b)}")
    diffs = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = len(diffs)
    if n == 0:
        return Interval(mean=0.0, low=0.0, high=0.0, n=0)
    picks = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    means = diffs[picks].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(mean=float(diffs.mean()), low=float(low), high=float(high), n=n)
