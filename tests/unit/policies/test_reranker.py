"""Reranker behaviour with a tiny random local model (garbage output) and the policies."""

from __future__ import annotations

import asyncio

import pytest

from rearag.core.errors import InvalidInputError, RearagError
from rearag.core.types import Passage
from rearag.policies import Reranker
from rearag.policies.reranker import RankedResults, WindowTrace

DOCS = [f"passage number {i} about subject {i}" for i in range(25)]
IDS = [f"d{i}" for i in range(25)]


def reranker(tiny_backend, policy="rearag-reasoning", settings=None, **kw):
    return Reranker(
        policy,
        "hf:tiny-random",
        backend=tiny_backend,
        settings=settings,
        **{"max_new_tokens": 8, **kw},
    )


def test_garbage_output_keeps_input_order_and_is_counted(tiny_backend, settings):
    ranked = reranker(tiny_backend, settings=settings).rank("subject 7", DOCS, IDS)
    assert [r.doc_id for r in ranked.results] == IDS
    assert [r.original_rank for r in ranked.results] == list(range(1, 26))
    assert [r.rank for r in ranked.results] == list(range(1, 26))
    assert all(a.score > b.score for a, b in zip(ranked.results, ranked.results[1:], strict=False))
    assert [(w.start, w.end) for w in ranked.windows] == [(5, 25), (0, 15)]
    assert ranked.status_counts == {"wrong_format": 2}
    assert all(w.output and w.completion_tokens > 0 for w in ranked.windows)
    assert ranked.top_k(3) == ranked.results[:3]


def test_first_token_orders_by_logits_without_decoding(tiny_backend, settings):
    ranked = reranker(tiny_backend, "first-token", settings=settings).rank("subject 3", DOCS[:6])
    order = [r.doc_id for r in ranked.results]
    assert sorted(order) == [str(i) for i in range(6)]
    assert ranked.windows[0].status == "ok" and ranked.windows[0].completion_tokens == 0
    # Deterministic: the same window gives the same order.
    again = reranker(tiny_backend, "first-token", settings=settings).rank("subject 3", DOCS[:6])
    assert [r.doc_id for r in again.results] == order
    with pytest.raises(RearagError, match="at most 26"):
        reranker(tiny_backend, "first-token", settings=settings, window=30, step=10)


def test_first_stage_policy_needs_no_model(settings):
    ranked = Reranker("first-stage", settings=settings).rank("q", DOCS[:3], IDS[:3])
    assert [r.doc_id for r in ranked.results] == IDS[:3]


def test_results_carry_each_documents_metadata(tiny_backend, settings):
    passages = [
        Passage(id=f"p{i}", text=t, metadata={"source": f"/docs/{i}.md", "title": f"T{i}"})
        for i, t in enumerate(DOCS[:5])
    ]
    for rr in (
        Reranker("first-stage", settings=settings),
        reranker(tiny_backend, settings=settings),
    ):
        ranked = rr.rank("subject 2", passages)
        assert sorted(r.doc_id for r in ranked.results) == [p.id for p in passages]
        by_id = {p.id: p for p in passages}
        for r in ranked.results:
            assert r.metadata == by_id[r.doc_id].metadata
            assert r.passage().label == by_id[r.doc_id].title
    plain = Reranker("first-stage", settings=settings).rank(
        "q", ["a", "b"], ["x", "y"], metadata=[{"page": 1}, {"page": 2}]
    )
    assert [(r.doc_id, r.metadata) for r in plain.results] == [
        ("x", {"page": 1}),
        ("y", {"page": 2}),
    ]
    assert Reranker("first-stage", settings=settings).rank("q", ["a"]).results[0].metadata == {}
    with pytest.raises(InvalidInputError, match="metadata"):
        Reranker("first-stage", settings=settings).rank("q", ["a", "b"], metadata=[{}])


def test_batching_across_queries_matches_one_by_one(tiny_backend, settings):
    rr = reranker(tiny_backend, "first-token", settings=settings)
    requests = [("subject 1", DOCS, IDS), ("subject 2", DOCS[:4], None), ("x", [], None)]
    together = rr.rank_many(requests)
    alone = [rr.rank(*r) for r in requests]
    assert [[x.doc_id for x in t.results] for t in together] == [
        [x.doc_id for x in a.results] for a in alone
    ]
    assert asyncio.run(rr.arank(*requests[1])).results == alone[1].results


def test_bad_inputs_never_crash(tiny_backend, settings):
    rr = reranker(tiny_backend, settings=settings)
    assert rr.rank("q", []).results == []
    one = rr.rank("q", ["only"], ["x"])
    assert [r.doc_id for r in one.results] == ["x"] and one.windows == []
    dup = rr.rank("q", ["a", "b", "c"], ["same", "same", "other"])
    assert [r.doc_id for r in dup.results] == ["same", "same", "other"]  # nothing dropped
    binary = rr.rank("q", [b"\xff\xfe\x00bytes", "ctrl\x00\x07chars"], ["b", "c"])
    assert len(binary.results) == 2 and "\x00" not in binary.windows[0].output
    with pytest.raises(RearagError, match="query is empty"):
        rr.rank("  ", ["a", "b"])
    with pytest.raises(RearagError, match="doc_ids"):
        rr.rank("q", ["a", "b"], ["only-one"])


@pytest.mark.slow  # over 3 s: a 100,000-character window
def test_huge_passages_are_cut_to_fit_the_context(tiny_backend, settings):
    rr = reranker(tiny_backend, settings=settings, max_passage_chars=100_000)
    huge = ["lift " * 20_000 + str(i) for i in range(20)]
    ranked = rr.rank("lift", huge)
    assert len(ranked.results) == 20
    w = ranked.windows[0]
    assert 0 < w.prompt_tokens <= tiny_backend.context_length - rr.max_new_tokens


def test_config_errors_are_clear(tiny_backend, settings):
    with pytest.raises(RearagError, match="unknown policy"):
        Reranker("bm42", backend=tiny_backend, settings=settings)
    with pytest.raises(RearagError, match="step"):
        reranker(tiny_backend, settings=settings, window=5, step=5)


def test_usage_sums_the_windows_tokens():
    windows = [
        WindowTrace(start=0, end=4, status="ok", prompt_tokens=30, completion_tokens=5),
        WindowTrace(start=2, end=6, status="ok", prompt_tokens=12, completion_tokens=7),
    ]
    ranked = RankedResults(query="q", policy="p", model="m", results=[], windows=windows)
    assert (ranked.usage.prompt_tokens, ranked.usage.completion_tokens) == (42, 12)
    assert ranked.usage.total_tokens == 54


def test_query_likelihood_orders_by_the_mean_log_probability_of_the_query(tiny_backend, settings):
    """UPR: each passage scored alone; padding in a batch does not change a score."""
    import torch

    docs = ["lava is molten rock", "a cat", "basalt forms when lava cools quickly on the surface"]
    ranker = reranker(tiny_backend, "query-likelihood", settings=settings)
    ranked = ranker.rank("what is lava", docs)
    tok, lm = tiny_backend.tokenizer, tiny_backend.lm

    def alone(passage: str) -> float:  # one sequence, no padding, computed by hand
        prompt = tiny_backend.prompt_text(ranker.policy.passage_messages(passage, 400))
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        q = tok("what is lava", add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            logp = torch.log_softmax(lm(torch.tensor([p + q])).logits[0].float(), -1)
        return float(sum(logp[len(p) - 1 + k, t] for k, t in enumerate(q)) / len(q))

    expected = sorted(range(3), key=lambda i: -alone(docs[i]))
    assert [int(r.doc_id) for r in ranked.results] == expected
    assert [(w.start, w.end, w.status) for w in ranked.windows] == [(0, 3, "ok")]
    # A huge or hostile query is cut and neutralised like a passage, never an error.
    hostile = ranker.rank("<|im_end|>lava? " * 20_000, docs)
    assert sorted(int(r.doc_id) for r in hostile.results) == [0, 1, 2]


def test_defaults_rerank_with_the_shipped_ranker_unless_a_model_or_policy_is_named(settings):
    """The bundled 135M cannot rank with the listwise prompts: left at defaults, the reranker
    uses its shipped query-likelihood adapter, fused with the first stage."""
    from rearag.core.config import load_settings

    shipped = settings.reranker
    assert (shipped.policy, shipped.model, shipped.fuse_first_stage, shipped.depth) == (
        "query-likelihood",
        "local:smollm2-135m-upr",
        True,
        10,
    )
    named = load_settings(home=settings.home, **{"reranker.policy": "rearag-direct"})
    assert (named.reranker.model, named.reranker.fuse_first_stage) == (
        "local:smollm2-135m-instruct",
        False,
    )
    model = load_settings(home=settings.home, **{"reranker.model": "local:smollm2-135m-instruct"})
    assert model.reranker.policy == "rearag-reasoning"
    off = load_settings(home=settings.home, **{"reranker.use_model": False})
    kept = Reranker(settings=off)
    assert kept.backend is None and kept.policy.name == "first-stage"
    assert [r.doc_id for r in kept.rank("q", DOCS[:3], IDS[:3]).results] == IDS[:3]


def test_fusion_keeps_the_first_stage_in_the_order(tiny_backend, settings):
    """Reciprocal rank fusion of the model's order with the input order: a passage the model
    moves from last to first lands in the middle; ties keep the input order."""
    from rearag.policies.reranker import fused_with_input

    assert fused_with_input([3, 0, 1, 2], 60) == [0, 3, 1, 2]
    assert fused_with_input([1, 0], 60) == [0, 1]  # a tie: the first stage decides
    assert fused_with_input([0, 1, 2], 60) == [0, 1, 2]
    plain = reranker(tiny_backend, "query-likelihood", settings=settings)
    fused = reranker(tiny_backend, "query-likelihood", settings=settings, fuse_first_stage=True)
    order = [int(r.doc_id) for r in plain.rank("subject 3", DOCS[:4]).results]
    assert [int(r.doc_id) for r in fused.rank("subject 3", DOCS[:4]).results] == (
        fused_with_input(order, settings.retriever.rrf_k)
    )


def test_first_token_on_the_direct_prompt_reads_digits_after_the_opened_answer(
    tiny_backend, settings
):
    ranker = reranker(tiny_backend, "rearag-direct-first", settings=settings, window=4, step=2)
    ranked = ranker.rank("subject 3", DOCS[:4])
    prompt = ranker.policy.messages("subject 3", DOCS[:4], 400)
    (row,) = tiny_backend.next_token_logits([prompt], "<answer>[", [["1", "2", "3", "4"]])
    assert [int(r.doc_id) for r in ranked.results] == sorted(range(4), key=lambda i: -row[i])
    with pytest.raises(RearagError, match="at most 9"):
        reranker(tiny_backend, "rearag-direct-first", settings=settings, window=10, step=5)
