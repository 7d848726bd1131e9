"""Embedders: an OpenAI-compatible embeddings server through litellm (a real HTTP server on
127.0.0.1 serving the bundled MiniLM's vectors, tests/fakes/embedding_server.py), the bfloat16
backend, and the embedder's options."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fakes.cli import assert_one_line_error, rearag
from fakes.embedding_server import MINILM, EmbeddingServer, api_base, serve_embeddings

from rearag.core.config import EmbedderConfig
from rearag.core.errors import BackendError
from rearag.tools.embedder import (
    LiteLLMEncoder,
    RearagEmbeddingFunction,
    load_sentence_transformer,
    resolve_threads,
    why_bf16_is_slow,
)

pytestmark = pytest.mark.slow  # the real embedder, the CLI in a subprocess


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingServer]:
    srv = serve_embeddings()
    yield srv
    srv.shutdown()


def encoder(server: EmbeddingServer, **options: Any) -> LiteLLMEncoder:
    cfg = EmbedderConfig(model="litellm:openai/minilm", api_base=api_base(server), **options)
    return LiteLLMEncoder(cfg, backoff_s=0.01)


def test_requests_are_batched_parallel_and_retried(server):
    server.requests.clear()
    server.busy_max = 0
    texts = [f"text number {i}" for i in range(10)]
    vectors = encoder(server, batch_size=3, concurrency=2).encode(texts)
    assert sorted(server.requests) == [1, 3, 3, 3]
    assert server.busy_max == 2
    expected = load_sentence_transformer(MINILM).encode(texts, normalize_embeddings=True)
    assert np.allclose(vectors, expected, atol=1e-5)  # in input order, unit length

    server.fail = 2  # two 503s, then an answer: within 2 retries
    assert encoder(server, max_retries=2).encode(["x"]).shape == (1, 384)
    server.fail = 3
    with pytest.raises(BackendError, match=r"failed 2 times \(ServiceUnavailableError\)"):
        encoder(server, max_retries=1).encode(["x"])
    server.fail = 0


def test_an_unreachable_server_is_one_line():
    cfg = EmbedderConfig(
        model="litellm:openai/minilm", api_base="http://127.0.0.1:9/v1", max_retries=0
    )
    with pytest.raises(BackendError, match="check that the server runs") as err:
        LiteLLMEncoder(cfg).encode(["x"])
    assert "\n" not in str(err.value)


def test_bfloat16_gives_the_models_own_vectors():
    import torch

    texts = ["hello", "A volcano is a rupture in the crust of a planet. " * 30, "bread"]
    reference = RearagEmbeddingFunction().encode(texts)
    bf16 = RearagEmbeddingFunction(EmbedderConfig(backend="torch-bf16"))
    vectors = bf16.encode(texts)
    assert np.linalg.norm(vectors, axis=1) == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.sum(vectors * reference, axis=1) > 0.999)
    assert bf16.identity == MINILM  # the same vectors: collections mix torch and torch-bf16
    assert bf16.encode([]).shape[0] == RearagEmbeddingFunction().encode([]).shape[0] == 0
    # In bfloat16 where the machine runs it fast (AMX), else in fp32 (the other test).
    weights = next(load_sentence_transformer(MINILM, "cpu", True).parameters())
    assert weights.dtype == (torch.float32 if why_bf16_is_slow("cpu") else torch.bfloat16)


def test_avx512_bf16_makes_bfloat16_fast_for_the_models_that_say_so(monkeypatch):
    import torch

    # An AMD EPYC of this project: AVX512-BF16 without AMX. The ranker's scoring ran 1.6-2.0x
    # faster in bfloat16 there, MiniLM 0.8x: only the decoder asks for it.
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert why_bf16_is_slow("cpu", avx512_bf16=True) is None
    assert why_bf16_is_slow("cpu") == (
        "as this CPU has no AMX, without which bfloat16 is slower than fp32"
    )
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert why_bf16_is_slow("cpu", avx512_bf16=True) is None
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN may not use the instructions
    assert why_bf16_is_slow("cpu", avx512_bf16=True) == (
        "as this CPU has no AMX or AVX512-BF16, without which bfloat16 is slower than fp32"
    )


def test_embedder_options_are_checked(tmp_path):
    typo = rearag("--embedder-backend", "bf16", "search", "x", env={"REARAG_HOME": str(tmp_path)})
    assert_one_line_error(typo, "embedder.backend: Input should be 'torch', 'torch-bf16'")
    assert "used on CUDA GPUs and CPUs with AMX only, not on mps" in why_bf16_is_slow("mps")
    import torch

    if not torch.cuda.is_available():
        assert why_bf16_is_slow("cuda") == "as this GPU has no native bfloat16"
    assert resolve_threads(0) == os.cpu_count()
    assert resolve_threads(None) is None and resolve_threads(3) == 3
    with pytest.raises(ValueError, match=re.escape("embedder.backend applies to local: and hf:")):
        EmbedderConfig(model="litellm:openai/x", backend="onnx")
    with pytest.raises(ValueError, match=re.escape("embedder.model must be")):
        EmbedderConfig(model="policy:mine")
