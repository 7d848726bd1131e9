"""Reranking strategies: their window plans with a perfect ranker, the rounds' concurrency
against a real OpenAI-compatible server, the window cache, and each strategy end to end on the
bundled local model."""

from __future__ import annotations

import random
import re
import threading
import time

import pytest
from openai_server import Script, serve

from rearag.core.config import load_settings
from rearag.policies import Reranker
from rearag.policies.strategies import plan


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


class Overlap:
    """A scripted reranker reply that takes `seconds` and counts requests in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.now, self.peak, self.calls = seconds, 0, 0, 0
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]]) -> str:
        with self.lock:
            self.now, self.calls = self.now + 1, self.calls + 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.seconds)
        with self.lock:
            self.now -= 1
        return "[2] > [1]"


@pytest.fixture
def scripted(home):
    script = Script()
    httpd, base = serve(script)
    yield script, base
    httpd.shutdown()


def api_reranker(base: str, **options) -> Reranker:
    return Reranker(
        "rankgpt",
        "litellm:openai/scripted",
        settings=load_settings(),
        api_base=base,
        max_retries=0,
        **options,
    )


DOCS = [f"passage {i} about lava and magma number {i}" for i in range(60)]


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


def test_the_window_cache_sends_a_window_once(scripted):
    script, base = scripted
    script.default = overlap = Overlap(0.0)
    first = api_reranker(base, strategy="partition", cache=True).rank("lava?", DOCS)
    sent = overlap.calls
    assert sent == len(first.windows) and not any(w.cached for w in first.windows)
    again = api_reranker(base, strategy="partition", cache=True).rank("lava?", DOCS)
    assert overlap.calls == sent  # nothing sent: every window came from the cache
    assert all(w.cached for w in again.windows)
    assert [r.doc_id for r in again.results] == [r.doc_id for r in first.results]
    # Another generation budget is another window; without the cache everything is sent.
    api_reranker(base, strategy="partition", cache=True, max_new_tokens=7).rank("lava?", DOCS)
    assert overlap.calls == 2 * sent
    api_reranker(base, strategy="partition").rank("lava?", DOCS)
    assert overlap.calls == 3 * sent
    # A failed window is not kept.
    script.status(500)
    failed = api_reranker(base, strategy="window", cache=True).rank("magma?", DOCS[:5])
    assert failed.windows[0].status == "backend_error"
    retried = api_reranker(base, strategy="window", cache=True).rank("magma?", DOCS[:5])
    assert retried.windows[0].status != "backend_error" and not retried.windows[0].cached


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


def test_a_broken_window_cache_is_one_clear_error(scripted, home):
    from rearag.core.errors import ConfigError

    _, base = scripted
    (home / "cache").mkdir(parents=True)
    (home / "cache" / "windows.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ConfigError, match="not a readable SQLite database: delete it"):
        api_reranker(base, cache=True)
