"""Shared fixtures. Tests never reach a network: hubs are switched off before anything loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.offline import go_offline

go_offline()

from fakes.chroma import chroma_server as running_chroma_server  # noqa: E402
from fakes.cli import RAGBIN  # noqa: E402, F401 (`from conftest import RAGBIN` still works)
from fakes.docs import write_docs  # noqa: E402

from rearag.core.config import Settings, load_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty REARAG_HOME, and a working folder without a rearag.toml."""
    home = tmp_path / "home"
    monkeypatch.setenv("REARAG_HOME", str(home))
    monkeypatch.delenv("REARAG_CONFIG", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return home


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    return write_docs(tmp_path / "docs")


@pytest.fixture
def chroma_server(tmp_path: Path):
    """The port of a `chroma run` server on loopback, stopped after the test."""
    with running_chroma_server(tmp_path / "server-data") as (port, _):
        yield port


@pytest.fixture(scope="session")
def models_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REARAG_HOME whose models/ holds the bundled SmolLM2, converted once per test run."""
    from rearag.tools.local_llm import bundled_model_dir

    home = tmp_path_factory.mktemp("models-home")
    bundled_model_dir("smollm2-135m-instruct", home / "models")
    return home


@pytest.fixture(scope="session")
def tiny_backend():
    """A tiny random Llama with the real SmolLM2 tokenizer: fast, and it writes garbage. The
    tokenizer is read straight from the bundled GGUF (seconds), not from the converted model."""
    import importlib.util

    from transformers import AutoTokenizer

    from rearag.tools.local_llm import BUNDLED_LLMS, TransformersBackend

    package, filename = BUNDLED_LLMS["smollm2-135m-instruct"]
    folder = Path(importlib.util.find_spec(package).origin).parent
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    tok.padding_side = "left"
    return TransformersBackend(
        "hf:tiny-random", "", model_obj=tiny_llama(tok).eval(), tokenizer=tok
    )


def tiny_llama(tok):
    """A 2-layer Llama with random weights (seed 0) for `tok`'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return LlamaForCausalLM(config)
