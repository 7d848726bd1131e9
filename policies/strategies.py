"""Which windows a listwise reranker asks the model to rank, and how their answers make one
ranking. Every strategy is a plan: a generator that yields rounds of windows (the windows of a
round are independent, so they may run concurrently), receives each window's ranked passages,
and returns the final order.

- `sliding` (RankGPT, REARANK): windows from the back of the list to the front, each one after
  the other, so the best passages bubble up: at depth 100, window 20, step 10, 9 rounds.
- `partition` (top-down partitioning, TDPart: Parry et al., SIGIR 2024, arXiv 2405.14589):
  rank the first window; its passage at `pivot` becomes the pivot; every other passage is
  ranked against it, in windows of window-1 plus the pivot, all in one round; those ranked
  above the pivot join the first window's best in a final window (or, when too many, the plan
  repeats on them). At depth 100, window 20: 3 rounds, 7 windows.
- `window`: one window over the head of the list; the rest keep their order.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

from rearag.core.config import RerankStrategy


class Window(NamedTuple):
    start: int  # the positions the window covers in the list as it stands when it runs
    end: int
    docs: list[int]  # the passages shown to the model, in order (indexes into the input)
    pivot: bool = False  # docs[0] is the partition's pivot, from outside start:end


# Yields each round's windows, receives each window's docs best first, returns the order.
Plan = Generator[list[Window], list[list[int]], list[int]]


def window_spans(n: int, window: int, step: int) -> list[tuple[int, int]]:
    """[start, end) spans from the back of the list to the front; one span when n <= window."""
    if n <= 1:
        return []
    if n <= window:
        return [(0, n)]
    spans = []
    end = n
    while True:
        start = max(0, end - window)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


def sliding(order: list[int], window: int, step: int) -> Plan:
    order = list(order)
    for start, end in window_spans(len(order), window, step):
        [ranked] = yield [Window(start, end, order[start:end])]
        order[start:end] = ranked
    return order


def head(order: list[int], window: int) -> Plan:
    order = list(order)
    if len(order) > 1:
        end = min(window, len(order))
        [ranked] = yield [Window(0, end, order[:end])]
        order[:end] = ranked
    return order


def partition(order: list[int], window: int, pivot: int) -> Plan:
    if len(order) <= window:
        return (yield from head(order, window))
    # The pivot is at most halfway down the first window, so the pool of candidates left for
    # the final window is always smaller than the list (the plan ends).
    k = min(pivot, window // 2) - 1
    [first] = yield [Window(0, window, order[:window])]
    best, the_pivot, below = first[:k], first[k], first[k + 1 :]
    rest, size = order[window:], window - 1
    chunks = [rest[i : i + size] for i in range(0, len(rest), size)]
    starts = range(window, len(order), size)
    ranked = yield [
        Window(s, s + len(c), [the_pivot, *c], pivot=True)
        for s, c in zip(starts, chunks, strict=True)
    ]
    above = [d for r in ranked for d in r[: r.index(the_pivot)]]
    under = [d for r in ranked for d in r[r.index(the_pivot) + 1 :]]
    pool, tail = [*best, the_pivot, *above], [*below, *under]
    if not above:  # nothing beat the pivot: the first window's order stands
        return [*pool, *tail]
    if len(pool) <= window:
        [final] = yield [Window(0, len(pool), pool)]
        return [*final, *tail]
    return [*(yield from partition(pool, window, pivot)), *tail]


def plan(strategy: RerankStrategy, order: list[int], window: int, step: int, pivot: int) -> Plan:
    if strategy == "sliding":
        return sliding(order, window, step)
    if strategy == "partition":
        return partition(order, window, pivot)
    return head(order, window)
