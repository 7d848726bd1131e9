"""Fixtures of the tools tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from rearag.core.config import EmbedderConfig
from rearag.tools.embedder import RearagEmbeddingFunction


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REARAG_HOME whose models/ holds the bundled MiniLM exported to ONNX once."""
    home = tmp_path_factory.mktemp("onnx-home")
    RearagEmbeddingFunction(EmbedderConfig(backend="onnx"), home / "models").encode(["x"])
    return home
