"""Which backend runs a model reference: litellm: goes to LiteLLMBackend, the rest to
transformers."""

from __future__ import annotations

import threading
from typing import Any

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
        dtype=options.dtype,
    )


def _default_batch() -> int:
    import torch

    return 8 if torch.cuda.is_available() else 1


class LazyBackend:
    """A backend loaded on its first use. The graph's model nodes often never call their model
    (a first question is not rewritten, the score grades, a weak model's answer is extracted):
    a cold `rearag ask` then loads no generator weights at all. A reference that cannot load
    (an unknown bundled model, a policy never trained) is still an error at once. Attributes
    other than `model` (generate, stream, …) are the loaded backend's, so its optional
    abilities still show."""

    def __init__(self, options: LLMOptions, settings: Settings) -> None:
        if parse_model_ref(options.model).kind != "litellm":
            from rearag.tools.local_llm import check_model_ref

            check_model_ref(options.model, settings.policies_dir)  # a wrong name fails now
        self.model = options.model
        self._options, self._settings = options, settings
        self._backend: LLMBackend | None = None
        self._lock = threading.Lock()  # one load when a server's requests arrive together

    @property
    def loaded(self) -> LLMBackend:
        with self._lock:
            if self._backend is None:
                self._backend = load_backend(self._options, self._settings)
            return self._backend

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not the backend's: copy/pickle probes, our own fields
            raise AttributeError(name)
        return getattr(self.loaded, name)
