"""`rearag eval retrieval` and `rearag eval rerank` as a user runs them: a small BEIR dataset,
the reranker on the scripted OpenAI-compatible server (its windows cached) or on the bundled
model, and bad datasets as one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakes.beir import DOCS, QRELS, QUERIES, write_beir
from fakes.cli import assert_one_line_error, rearag
from fakes.rankers import reverse_ranker

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.eval.beir import load_beir
from rearag.eval.retrieval import evaluate_retrieval


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path, DOCS, QUERIES, QRELS)


def test_eval_cli_json_and_bad_datasets(home, beir, tmp_path):
    proc = rearag("eval", "retrieval", str(beir), "--mode", "bm25", "--json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["mode"] == "bm25" and 0.9 < row["ndcg_10"] <= 1.0

    assert_one_line_error(rearag("eval", "retrieval", str(tmp_path)), "corpus.jsonl not found")
    proc = rearag("eval", "retrieval", str(beir), "--mode", "fuzzy")
    assert proc.returncode == 2  # a usage mistake, caught by the option's choices
    assert_one_line_error(proc, "'fuzzy' is not one of")
    with pytest.raises(RearagError, match="unknown search mode 'fuzzy'"):
        evaluate_retrieval(beir, load_settings(), ["fuzzy"], progress=False)
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1 d1\n")
    with pytest.raises(RearagError, match=r"test\.tsv:2"):
        load_beir(beir)


@pytest.mark.slow  # ingests a BEIR corpus with the real embedder, runs the CLI
def test_eval_rerank_cli_against_the_server(server, home, tmp_path):
    script, base = server
    script.default = reverse_ranker
    root = write_beir(tmp_path, DOCS, QUERIES, QRELS)
    args = ["eval", "rerank", str(root), "--policy", "rearag-reasoning"]
    args += ["--model", "litellm:openai/test-model", "--api-base", base]
    args += ["--depth", "4", "--queries", "2", "--json"]
    proc = rearag(*args)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["queries"] == 2 and result["window_status"] == {"ok": 2}
    assert result["strategy"] == "sliding" and result["rounds_per_query"] == 1
    # Reversing a good first-stage order can only hurt: the numbers are real.
    assert result["ndcg_10_after"] < result["ndcg_10_before"]
    assert len(script.requests) == 2
    # The same evaluation again: its windows come from the cache, nothing is sent.
    again = json.loads(rearag(*args).stdout)
    assert again["cached_windows"] == 2 and len(script.requests) == 2
    assert again["ndcg_10_after"] == result["ndcg_10_after"]
    fresh = json.loads(rearag(*args, "--no-cache", "--strategy", "partition").stdout)
    assert fresh["strategy"] == "partition" and fresh["cached_windows"] == 0
    assert len(script.requests) == 4


def test_eval_rerank_cli_with_the_bundled_model(models_home, tmp_path):
    root = write_beir(tmp_path, DOCS, QUERIES, QRELS)
    proc = rearag(
        "eval",
        "rerank",
        str(root),
        "--policy",
        "rearag-reasoning",
        "--model",
        "local:smollm2-135m-instruct",
        "--depth",
        "3",
        "--queries",
        "1",
        "--max-new-tokens",
        "16",
        "--json",
        env={"REARAG_HOME": str(models_home), "REARAG_CONFIG": ""},
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["queries"] == 1 and result["windows"] == 1
    assert 0.0 <= result["ndcg_10_after"] <= 1.0 and result["completion_tokens"] > 0
    assert os.path.exists(result["run_file"])
