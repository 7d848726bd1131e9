"""Local transformers models: the bundled SmolLM2-135M (GGUF → plain float model, cached,
trainable, and really run), and streaming on a tiny random model."""

from __future__ import annotations

import json
import time

import pytest

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.policies import Reranker
from rearag.tools.local_llm import bundled_model_dir, load_causal_lm, model_path

NAME = "smollm2-135m-instruct"


@pytest.mark.slow  # converts and runs the bundled 135M model
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


@pytest.mark.slow  # converts and runs the bundled 135M model
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


@pytest.mark.slow  # merges the shipped adapter into the bundled 135M model and runs it
def test_the_shipped_adapter_loads_offline_and_ranks_a_window(models_home, monkeypatch):
    monkeypatch.setenv("REARAG_HOME", str(models_home))
    settings = load_settings()  # defaults: the shipped query-likelihood ranker
    plain = Reranker(settings=settings, fuse_first_stage=False)
    assert plain.config.model == "local:smollm2-135m-upr" and plain.policy.kind == "likelihood"
    assert (models_home / "models" / "smollm2-135m-upr" / "config.json").is_file()  # cached
    claim = "Vitamin D supplements reduce the risk of bone fractures in older adults."
    passages = [
        "Sourdough bread is leavened by wild yeast and lactobacilli.",
        "The tides are raised by the moon's gravity.",
        "In a trial of 2,000 adults over 65, vitamin D supplementation lowered hip and other "
        "fractures compared with placebo.",
    ]
    ranked = plain.rank(claim, passages)
    assert ranked.results[0].original_rank == 3
    fused = [r.original_rank for r in Reranker(settings=settings).rank(claim, passages).results]
    assert fused.index(3) < fused.index(2)  # moved up, short of overruling the first stage


@pytest.mark.slow  # converts and runs the bundled 135M model
def test_unknown_or_missing_models_are_clear_errors(models_home):
    with pytest.raises(RearagError, match="no bundled model"):
        model_path("local:gpt-5", models_home / "models", models_home / "policies")
    with pytest.raises(RearagError, match="no trained policy"):
        model_path("policy:mine", models_home / "models", models_home / "policies")
    with pytest.raises(RearagError, match="cannot load model"):
        load_causal_lm(str(models_home / "no-such-model"))


def test_local_streaming_matches_generate(tiny_backend):
    messages = [{"role": "user", "content": "Say something."}]
    *pieces, done = tiny_backend.stream(messages, 12)
    [whole] = tiny_backend.generate([messages], 12)
    assert len(pieces) > 1 and "".join(pieces).strip() == whole.text.strip()
    assert done.text == "".join(pieces) and done.error is None
    assert (done.prompt_tokens, done.completion_tokens) == (
        whole.prompt_tokens,
        whole.completion_tokens,
    )


def test_answer_logprobs_are_the_mean_logprob_of_the_answer_tokens(tiny_backend):
    # Only the positions that predict the answer are projected onto the vocabulary; the score
    # must still be what the whole forward pass gives, batched with padding or alone.
    import torch

    backend = tiny_backend
    prompts = [
        [{"role": "user", "content": "Passage: lava is hot."}],
        [{"role": "user", "content": "x"}],
    ]
    answers = ["Where is lava?", "A much longer question about what lava is made of?"]
    backend.batch_size = 2
    scores = backend.answer_logprobs(prompts, answers)
    tok, lm = backend.tokenizer, backend.lm
    for messages, answer, score in zip(prompts, answers, scores, strict=True):
        prompt = tok(backend.prompt_text(messages), add_special_tokens=False)["input_ids"]
        target = tok(answer, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + target])
        with torch.inference_mode():
            logprobs = torch.log_softmax(lm(input_ids=ids).logits.float(), -1)[0]
        expected = logprobs[len(prompt) - 1 : -1].gather(-1, ids[0, len(prompt) :, None]).mean()
        assert score == pytest.approx(float(expected), abs=1e-4)


@pytest.mark.slow  # loads the bundled 135M model
def test_a_local_model_runs_in_bfloat16_when_asked_or_where_that_is_fast(models_home):
    import torch

    from rearag.tools.embedder import why_bf16_is_slow

    folder = str(bundled_model_dir(NAME, models_home / "models"))
    assert load_causal_lm(folder)[0].dtype == torch.float32
    assert load_causal_lm(folder, "bfloat16")[0].dtype == torch.bfloat16
    # An AMX or AVX512-BF16 CPU; AVX2 ones keep float32.
    fast = why_bf16_is_slow("cpu", avx512_bf16=True) is None
    assert load_causal_lm(folder, "auto")[0].dtype == (torch.bfloat16 if fast else torch.float32)


def test_the_shipped_ranker_picks_its_weights_type_and_other_nodes_keep_float32(home):
    settings = load_settings()
    assert settings.reranker.policy == "query-likelihood" and settings.reranker.dtype == "auto"
    assert settings.generator.dtype == "float32"
    assert load_settings(**{"reranker.dtype": "float32"}).reranker.dtype == "float32"
