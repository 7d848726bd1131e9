"""BEIR datasets: the collection an evaluation indexes a corpus into."""

from __future__ import annotations

import pytest

from rearag.core.config import load_settings

pytestmark = pytest.mark.slow


def test_evaluation_collections_are_per_embedder_identity(tmp_path):
    """An int8 evaluation gets an index of its own; fp32 ONNX reuses torch's (same vectors)."""
    from rearag.eval.beir import corpus_collection

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "text": "lava"}\n')

    def name(backend: str) -> str:
        settings = load_settings(home=tmp_path, **{"embedder.backend": backend})
        return corpus_collection(corpus, settings, "c")

    assert name("torch") == name("onnx") != name("onnx-int8")
