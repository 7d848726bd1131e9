"""`rearag rerank` over a collection as a user runs it, the reranker on the scripted
OpenAI-compatible server: the order, the reasoning, and the usage errors."""

from __future__ import annotations

import json

import pytest
from fakes.cli import assert_one_line_error, rearag
from fakes.rankers import reverse_ranker


@pytest.mark.slow  # ingests with the real embedder, runs the CLI
def test_rerank_cli_over_a_collection(server, home, docs):
    script, base = server
    script.default = reverse_ranker
    assert rearag("ingest", str(docs), "-c", "rr-docs", "-q").returncode == 0
    api = ["--model", "litellm:openai/test-model", "--api-base", base]
    proc = rearag(
        "rerank",
        "wild yeast",
        "-c",
        "rr-docs",
        *api,
        "--first-stage",
        "dense",
        "--depth",
        "3",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    first_stage = [r["doc_id"] for r in sorted(data["results"], key=lambda r: r["original_rank"])]
    assert [r["doc_id"] for r in data["results"]] == first_stage[::-1]
    assert all(r["metadata"]["source"].startswith(str(docs.resolve())) for r in data["results"])
    assert data["windows"][0]["reasoning"] == "the later passages look better"

    text = rearag("rerank", "wild yeast", "-c", "rr-docs", *api, "--show-reasoning").stdout
    assert "reasoning: the later passages look better" in text and "window [1-3]: ok" in text

    assert_one_line_error(
        rearag("rerank", "x", "-c", "rr-docs", "--policy", "first-token", *api),
        "needs a local model",
    )
    assert_one_line_error(
        rearag("rerank", "x", "-c", "rr-docs", "--strategy", "zigzag", *api),
        "'zigzag' is not one of 'sliding', 'partition', 'window'",
    )
    assert_one_line_error(
        rearag("rerank", "x", "-c", "rr-docs", "--policy", "nope", *api), "'nope' is not one of"
    )
