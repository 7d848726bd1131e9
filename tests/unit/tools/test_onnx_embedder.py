"""The ONNX Runtime backends of the bundled embedder: fp32 gives torch's vectors (and shares
its collections), int8 moves them, threads do not. The `onnx_home` fixture is in conftest.py."""

from __future__ import annotations

import numpy as np
import pytest
from fakes.embedding_server import MINILM

from rearag.core.config import EmbedderConfig
from rearag.tools.embedder import RearagEmbeddingFunction

pytestmark = pytest.mark.slow  # ONNX exports of the real embedder


def test_onnx_backends(onnx_home):
    texts = ["hello", "A volcano is a rupture in the crust of a planet. " * 30, "bread"]
    torch_ef = RearagEmbeddingFunction()
    reference = torch_ef.encode(texts)
    onnx = RearagEmbeddingFunction(EmbedderConfig(backend="onnx"), onnx_home / "models")
    int8 = RearagEmbeddingFunction(EmbedderConfig(backend="onnx-int8"), onnx_home / "models")
    # fp32 ONNX is the same model: the same vectors, the same identity.
    assert np.sum(onnx.encode(texts) * reference, axis=1) == pytest.approx(1.0, abs=1e-5)
    assert onnx.identity == torch_ef.identity == MINILM
    assert onnx.tokenizer(texts)["input_ids"] == torch_ef.tokenizer(texts)["input_ids"]
    # int8 weights move the vectors: close, but a collection must not mix them.
    cosine = np.sum(int8.encode(texts) * reference, axis=1)
    assert np.all(cosine > 0.97) and np.all(cosine < 0.9999)
    assert int8.identity == f"{MINILM}+onnx-int8"
    assert int8.encode([]).shape[0] == 0


def test_threads_do_not_change_vectors(onnx_home):
    texts = ["one thread", "or every core"]
    models = onnx_home / "models"
    one = RearagEmbeddingFunction(EmbedderConfig(backend="onnx", threads=1), models)
    every = RearagEmbeddingFunction(EmbedderConfig(backend="onnx", threads=0), models)
    assert np.allclose(one.encode(texts), every.encode(texts), atol=1e-5)
    assert sorted(p.name for p in models.iterdir()) == ["local-all-minilm-l6-v2.onnx"]
