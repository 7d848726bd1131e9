"""Which backend runs a model reference: litellm: goes to LiteLLMBackend, the rest to
transformers."""

from __future__ import annotations

from rearag.core.config import LLMOptions, Settings
from rearag.core.model_ref import parse_model_ref
from rearag.tools.llm import LLMBackend


def load_backend(options: LLMOptions, settings: Settings) -> LLMBackend:
    ref = parse_model_ref(options.model)
    if ref.kind == "litellm":
        from rearag.tools.litellm_backend import LiteLLMBackend

        return LiteLLMBackend(
            ref.name,
            api_base=options.api_base,
            api_key=options.api_key,
            timeout_s=options.timeout_s,
            max_retries=options.max_retries,
            concurrency=options.concurrency,
            fallback_model=options.fallback_model,
        )
    from rearag.tools.local_llm import TransformersBackend, model_path

    path = model_path(options.model, settings.models_dir, settings.policies_dir)
    return TransformersBackend(
        options.model,
        path,
        batch_size=options.batch_size or _default_batch(),
        threads=options.threads,
    )


def _default_batch() -> int:
    import torch

    return 8 if torch.cuda.is_available() else 1
