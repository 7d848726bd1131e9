"""Reranking strategies: their window plans with a perfect ranker, the rounds' concurrency
against a real OpenAI-compatible server, and each strategy end to end on the bundled local
model. The server comes from the `scripted` fixture (conftest.py)."""

from __future__ import annotations

import random
import re

import pytest
from fakes.rankers import Overlap, api_reranker

from rearag.core.config import load_settings
from rearag.policies import Reranker
from rearag.policies.strategies import plan, window_spans


def run_plan(strategy: str, n: int, worth: list[int], window=20, step=10, pivot=10):
    """Drive a plan with a perfect ranker (higher `worth` first): (order, windows per round)."""
    steps = plan(strategy, list(range(n)), window, step, pivot)
    rounds: list[int] = []
    try:
        windows = next(steps)
        while True:
            rounds.append(len(windows))
            for w in windows:
                assert len(w.docs) <= window and len(set(w.docs)) == len(w.docs)
            windows = steps.send([sorted(w.docs, key=lambda d: -worth[d]) for w in windows])
    except StopIteration as done:
        return done.value, rounds


def test_window_spans_back_to_front():
    assert window_spans(100, 20, 10) == [
        (80, 100),
        (70, 90),
        (60, 80),
        (50, 70),
        (40, 60),
        (30, 50),
        (20, 40),
        (10, 30),
        (0, 20),
    ]
    assert window_spans(20, 20, 10) == [(0, 20)]
    assert window_spans(7, 20, 10) == [(0, 7)]
    assert window_spans(25, 20, 10) == [(5, 25), (0, 15)]  # as rank_llm slides
    assert window_spans(1, 20, 10) == [] and window_spans(0, 20, 10) == []


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("strategy", ["sliding", "partition"])
def test_a_perfect_ranker_finds_the_true_top_10(strategy, seed):
    worth = list(range(100))
    random.Random(seed).shuffle(worth)
    order, _ = run_plan(strategy, 100, worth)
    assert sorted(order) == list(range(100))  # a permutation: nothing lost or repeated
    assert order[:10] == sorted(range(100), key=lambda d: -worth[d])[:10]


def test_window_plans_at_depth_100():
    # A first stage that is right on the whole: worth falls with the position, with noise.
    rng = random.Random(0)
    worth = [-(d + rng.gauss(0, 20)) for d in range(100)]
    # Sliding: 9 windows, each waiting for the one before it.
    assert run_plan("sliding", 100, worth)[1] == [1] * 9
    # Partition: the first window, then the other 80 passages in 5 windows of 19 + the pivot
    # at once, then one window over what beat the pivot.
    assert run_plan("partition", 100, worth)[1] == [1, 5, 1]
    # A first stage no better than chance: half the rest beats the pivot, and the plan
    # repeats on them; still fewer rounds than sliding.
    random.Random(0).shuffle(shuffled := list(range(100)))
    assert run_plan("partition", 100, shuffled)[1] == [1, 5, 1, 2, 1]
    # Nothing in the rest beats the pivot: no final window.
    assert run_plan("partition", 100, [100 - d for d in range(100)])[1] == [1, 5]
    # Window: the head only; the rest stays in first-stage order.
    order, rounds = run_plan("window", 100, worth)
    assert rounds == [1] and order[20:] == list(range(20, 100))
    # Short lists are one window whatever the strategy.
    for strategy in ("sliding", "partition", "window"):
        assert run_plan(strategy, 7, worth)[1] == [1]
        assert run_plan(strategy, 1, worth) == ([0], [])


def test_partition_recurses_when_most_passages_beat_the_pivot():
    # Reverse first-stage order: all 80 later passages beat the first window's pivot.
    order, rounds = run_plan("partition", 100, list(range(100)))
    assert order[:10] == list(range(99, 89, -1))
    assert len(rounds) > 3


DOCS = [f"passage {i} about lava and magma number {i}" for i in range(60)]


@pytest.mark.slow  # 3 s of scripted replies that take 0.3 s each
def test_partition_sends_a_rounds_windows_at_once(scripted):
    script, base = scripted
    script.default = overlap = Overlap(0.3)
    ranked = api_reranker(base, strategy="partition", concurrency=4).rank("lava?", DOCS)
    # 60 passages: the first window, then 40 in 3 windows of 19 + the pivot, side by side.
    assert [w.round for w in ranked.windows][:4] == [1, 2, 2, 2]
    assert [w.pivot for w in ranked.windows][:4] == [False, True, True, True]
    assert overlap.peak == 3
    overlap.peak = 0
    ranked = api_reranker(base, strategy="sliding", concurrency=4).rank("lava?", DOCS)
    assert [w.round for w in ranked.windows] == [1, 2, 3, 4, 5] and overlap.peak == 1
    # Several queries under rank_many: their windows of a round go out together, up to the
    # backend's concurrency.
    overlap.peak = 0
    requests = [(f"lava {i}?", DOCS[:20], None) for i in range(6)]
    api_reranker(base, strategy="window", concurrency=4).rank_many(requests)
    assert overlap.peak == 4


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["sliding", "partition", "window"])
def test_each_strategy_on_the_bundled_model(models_home, strategy, monkeypatch):
    monkeypatch.setenv("REARAG_HOME", str(models_home))
    reranker = Reranker(
        "rearag-reasoning",
        "local:smollm2-135m-instruct",
        settings=load_settings(),
        strategy=strategy,
        window=4,
        step=2,
        pivot=2,
        max_new_tokens=8,
        max_passage_chars=60,
    )
    docs = [f"Volcano fact {i}: lava is molten rock from a magma chamber." for i in range(9)]
    ranked = reranker.rank("Where does lava come from?", docs)
    assert sorted(int(r.doc_id) for r in ranked.results) == list(range(9))
    rounds = [w.round for w in ranked.windows]
    expected = {"sliding": 4, "window": 1}.get(strategy)
    assert (max(rounds) == expected) if expected else (rounds[:3] == [1, 2, 2])
    assert all(
        w.status in ("ok", "wrong_format", "repetition", "missing_documents")
        for w in ranked.windows
    )
    assert all(re.fullmatch(r"\d+", r.doc_id) for r in ranked.results)
