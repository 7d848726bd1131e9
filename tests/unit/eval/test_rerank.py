"""Rerank evaluation on judged data."""

from __future__ import annotations

import pytest
from fakes.beir import DOCS, QRELS, QUERIES, write_beir

from rearag.eval.rerank import evaluate_rerank
from rearag.policies import Reranker


@pytest.mark.slow  # ingests a BEIR corpus with the real embedder
def test_rerank_eval_scores_only_the_evaluated_queries(settings, tmp_path):
    """Regression: ir-measures counts judged queries missing from the run as 0, so a
    `--queries 1` evaluation once reported a third of the true nDCG."""
    root = write_beir(tmp_path, DOCS, QUERIES, QRELS)
    rr = Reranker("first-stage", settings=settings)
    one = evaluate_rerank(
        root, settings, rr, first_stage="bm25", depth=3, max_queries=1, progress=False
    )
    assert one.queries == 1 and one.ndcg_10_before == one.ndcg_10_after == 1.0
    # Regression: runs of two models of one policy were written to one file.
    other = Reranker("first-stage", "hf:some/other-model", settings=settings)
    two = evaluate_rerank(
        root, settings, other, first_stage="bm25", depth=3, max_queries=1, progress=False
    )
    assert two.run_file != one.run_file
