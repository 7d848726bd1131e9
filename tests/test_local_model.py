"""The bundled SmolLM2-135M: GGUF → plain float model, cached, trainable, and really run."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.policies import Reranker
from rearag.tools.local_llm import bundled_model_dir, load_causal_lm, model_path

pytestmark = pytest.mark.slow  # converts and runs the bundled 135M model

NAME = "smollm2-135m-instruct"


def test_conversion_is_cached_and_the_model_is_trainable(models_home):
    folder = bundled_model_dir(NAME, models_home / "models")
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    start = time.perf_counter()
    assert bundled_model_dir(NAME, models_home / "models") == folder
    assert time.perf_counter() - start < 1.0  # no second conversion
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config

    model, tokenizer = load_causal_lm(str(folder))
    assert not getattr(model, "is_quantized", False)
    assert (
        model.get_output_embeddings().weight.data_ptr()
        == model.get_input_embeddings().weight.data_ptr()
    )  # tied, as in the original
    # One optimiser step changes the weights: the plain model can be fine-tuned.
    import torch

    model.train()
    batch = tokenizer(["Passage [1] is relevant."], return_tensors="pt")
    loss = model(**batch, labels=batch["input_ids"]).loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad()
    model.eval()


def test_bundled_model_generates_and_reranks(models_home, monkeypatch):
    monkeypatch.setenv("REARAG_HOME", str(models_home))
    settings = load_settings()
    rr = Reranker(
        "rearag-reasoning", "local:smollm2-135m-instruct", settings=settings, max_new_tokens=24
    )
    c = rr.backend.generate(
        [[{"role": "user", "content": "What is the capital of France?"}]], max_new_tokens=12
    )[0]
    assert "Paris" in c.text and c.completion_tokens > 0
    ranked = rr.rank(
        "wing lift at high speed",
        [
            "The lift of swept wings at supersonic speed was measured.",
            "Heat conduction in composite slabs.",
            "Boundary layers on flat plates.",
        ],
    )
    assert sorted(r.original_rank for r in ranked.results) == [1, 2, 3]
    [window] = ranked.windows
    assert window.prompt_tokens > 100 and 0 < window.completion_tokens <= 24
    assert window.status in {"ok", "wrong_format", "repetition", "missing_documents"}


def test_unknown_or_missing_models_are_clear_errors(models_home):
    with pytest.raises(RearagError, match="no bundled model"):
        model_path("local:gpt-5", models_home / "models", models_home / "policies")
    with pytest.raises(RearagError, match="no trained policy"):
        model_path("policy:mine", models_home / "models", models_home / "policies")
    with pytest.raises(RearagError, match="cannot load model"):
        load_causal_lm(str(models_home / "no-such-model"))


def test_eval_rerank_cli_with_the_bundled_model(models_home, tmp_path):
    from test_cli import rearag
    from test_eval_retrieval import DOCS, QRELS, QUERIES, write_beir

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


def test_ask_on_a_new_folder_with_the_embedded_defaults(models_home, tmp_path):
    """The main job on the model users meet first: an answer in the documents is found,
    extracted and cited, not abstained; the weak model is mentioned once."""
    from conftest import write_docs
    from test_cli import rearag

    env = {"REARAG_HOME": str(models_home), "REARAG_CONFIG": "", "REARAG_COLLECTION": "mine"}
    docs = write_docs(tmp_path / "docs")
    assert rearag("ingest", str(docs), "-q", env=env).returncode == 0
    proc = rearag("ask", "Where does lava come from?", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["mode"] == "extractive" and not answer["abstained"]
    [citation] = answer["citations"]
    assert citation["source"].endswith("volcano.md")
    assert "magma chamber" in answer["answer"]
    assert answer["answer"].endswith(f"[{citation['number']}]")
    shown = rearag("ask", "Where does lava come from?", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "(extracted from the sources)" in shown.stdout
    assert re.search(r"\*\[\d\] Volcanoes", shown.stdout)
    assert shown.stderr.count("is a very small model") == 1
    # A question the documents cannot answer is abstained on, not answered from the nearest text.
    proc = rearag("ask", "What is the airspeed of an unladen swallow?", "--json", env=env)
    assert json.loads(proc.stdout)["mode"] == "abstained"


def test_demo_ends_with_a_grounded_cited_answer(models_home):
    from test_cli import rearag

    proc = rearag("demo", env={"REARAG_HOME": str(models_home), "REARAG_CONFIG": ""})
    assert proc.returncode == 0, proc.stderr
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    for step in ("rewrite", "retrieve", "rerank", "grade", "generate"):
        assert any(line.startswith(f"· {step}:") for line in lines), step
    assert "*[" in proc.stdout  # a cited source is marked
    draft = next((line for line in lines if line.startswith("· draft:")), "")
    sentences = [s for s in draft.split(". ") if s]
    assert len(sentences) == len(set(sentences))  # no loop on screen
