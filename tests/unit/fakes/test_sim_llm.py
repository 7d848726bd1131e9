"""The simulated reranking model of bench/rerank_strategies.py (tests/fakes/sim_llm.py): its
answer format, its qrels ranking, its seeded noise and its latency model."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from fakes.sim_llm import Judgments, Latency, SimLLM, count_tokens, serve

from rearag.policies.registry import get_policy
from rearag.policies.reranker import Reranker

POLICY = get_policy("rearag-reasoning")
QUERY = "how does a wing behave in a propeller slipstream?"
# Ten documents. d0..d2 share their first 240 characters and are longer than the 400 the
# prompt shows: the simulator must tell them apart by what follows, in shortened passages.
OPENING = "wing in a propeller slipstream at several angles of attack and velocity ratios " * 3
TAIL = " and a long discussion of the measured span loading that the prompt cuts off" * 4
DOCS = {
    f"d{i}": f"{OPENING}variant {i}{TAIL}" if i < 3 else f"document number {i} on topic {i}"
    for i in range(10)
}
GRADES = {"d2": 3, "d5": 3, "d7": 2, "d9": 1}
FORMAT = re.compile(r"<think>[^<]*</think>\s*<answer>\[\d+\]( > \[\d+\])*(</answer>)?")


def judgments() -> Judgments:
    return Judgments({"q1": QUERY}, DOCS, {"q1": GRADES})


def ask(sim: SimLLM, ids: list[str]) -> tuple[str, list[str]]:
    """The reply text to a window of `ids` in the policy's own prompt, and the ids it ranks."""
    messages = POLICY.messages(QUERY, [DOCS[d] for d in ids], 400)
    reply = sim.reply(messages, POLICY.max_new_tokens, list(POLICY.stop))
    parsed = POLICY.parse(reply.text, len(ids))
    assert parsed.status == "ok", reply.text
    return reply.text, [ids[i] for i in parsed.order]


def test_answers_in_the_policy_format_ranking_by_qrels_without_noise():
    sim = SimLLM(judgments(), think_tokens=50)
    ids = list(DOCS)
    text, ranked = ask(sim, ids)
    assert FORMAT.fullmatch(text)
    assert "</answer>" not in text  # the stop string is cut, as OpenAI does
    # By grade, ties in input order; the passages cut at 400 characters are still told apart.
    assert ranked == ["d2", "d5", "d7", "d9", "d0", "d1", "d3", "d4", "d6", "d8"]
    assert sim.unknown_passages == 0
    _, reversed_input = ask(sim, ids[::-1])
    assert reversed_input == ["d5", "d2", "d7", "d9", "d8", "d6", "d4", "d3", "d1", "d0"]


def test_noise_is_seeded_per_query_and_window():
    ids = list(DOCS)
    first = [ask(SimLLM(judgments(), noise=0.3, seed=s), ids)[1] for s in range(6)]
    again = [ask(SimLLM(judgments(), noise=0.3, seed=s), ids)[1] for s in range(6)]
    assert first == again
    assert len({tuple(r) for r in first}) > 1  # the seed matters
    # p = 1 swaps every disjoint adjacent pair of the sorted order.
    _, swapped = ask(SimLLM(judgments(), noise=1.0), ids)
    assert swapped == ["d5", "d2", "d9", "d7", "d1", "d0", "d4", "d3", "d8", "d6"]


def test_reasoning_length_jitter_is_seeded_and_bounded():
    sim = SimLLM(judgments(), think_tokens=100, think_jitter=0.5)
    ids = list(DOCS)
    windows = [ids[i:] + ids[:i] for i in range(8)]
    lengths = [len(ask(sim, w)[0].split("</think>")[0]) for w in windows]
    assert lengths == [len(ask(sim, w)[0].split("</think>")[0]) for w in windows]
    assert len(set(lengths)) > 1
    assert all(len("<think>") + 50 * 4 - 1 <= n <= len("<think>") + 150 * 4 for n in lengths)


def test_unknown_passages_are_counted_and_graded_zero():
    sim = SimLLM(judgments())
    messages = POLICY.messages(QUERY, ["not in the collection", DOCS["d7"]], 400)
    assert POLICY.parse(sim.reply(messages, None, []).text, 2).order == [1, 0]
    assert sim.unknown_passages == 1


def test_documents_the_prompt_cannot_tell_apart_share_the_best_grade():
    same = "an opening longer than the prompt shows " * 12
    docs = {"a": same + "first", "b": same + "second", "c": "another document"}
    sim = SimLLM(Judgments({"q1": QUERY}, docs, {"q1": {"b": 2, "c": 1}}))
    messages = POLICY.messages(QUERY, [docs["c"], docs["a"]], 400)
    assert POLICY.parse(sim.reply(messages, None, []).text, 2).order == [1, 0]
    assert sim.unknown_passages == 0


def test_latency_model_and_usage():
    sim = SimLLM(judgments(), think_tokens=40, latency=Latency(0.3, 0.001, 0.01))
    messages = POLICY.messages(QUERY, list(DOCS.values())[:3], 400)
    reply = sim.reply(messages, None, [])
    prompt_chars = sum(len(m["content"]) for m in messages)
    assert reply.prompt_tokens == count_tokens("x" * prompt_chars)
    assert reply.completion_tokens == count_tokens(reply.text) >= 40
    expected = 0.3 + reply.prompt_tokens * 0.001 + reply.completion_tokens * 0.01
    assert reply.seconds == pytest.approx(expected)
    short = sim.reply(messages, 10, [])
    assert short.finish_reason == "length" and short.completion_tokens == 10


def post(base: str, body: dict) -> tuple[dict, float]:
    request = urllib.request.Request(
        f"{base}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    began = time.perf_counter()
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), time.perf_counter() - began


def test_server_sleeps_the_scaled_latency_and_overlaps_requests():
    sim = SimLLM(judgments(), think_tokens=0, latency=Latency(0.6, 0.0, 0.0), time_scale=0.5)
    server, base = serve(sim)
    try:
        body = {"model": "sim", "messages": POLICY.messages(QUERY, list(DOCS.values()), 400)}
        reply, seconds = post(base, body)
        assert seconds >= 0.3  # 0.6 simulated seconds at half speed
        assert FORMAT.fullmatch(reply["choices"][0]["message"]["content"])
        assert reply["usage"]["prompt_tokens"] > 0
        sim.reset_stats()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: post(base, body), range(4)))
        assert sim.requests == 4 and sim.peak_in_flight >= 2
    finally:
        server.shutdown()


def test_the_reranker_drives_it_over_http(settings):
    sim = SimLLM(judgments(), latency=Latency(0.0, 0.0, 0.0))
    server, base = serve(sim)
    try:
        reranker = Reranker(
            "rearag-reasoning", "litellm:openai/sim", settings=settings, api_base=base
        )
        ranked = reranker.rank(QUERY, list(DOCS.values()), list(DOCS))
    finally:
        server.shutdown()
    assert [r.doc_id for r in ranked.results][:4] == ["d2", "d5", "d7", "d9"]
    assert ranked.status_counts == {"ok": 1}
    assert ranked.windows[0].completion_tokens > 0
