"""Embedders as a user runs them (`rearag` in subprocesses): an OpenAI-compatible embeddings
server gives the local embedder's results, collections refuse another embedder's vectors, and
bfloat16 where it is slow embeds in fp32 and says so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.cli import assert_one_line_error, rearag
from fakes.docs import write_docs
from fakes.embedding_server import EmbeddingServer, api_base, serve_embeddings

QUERIES = ["wild yeast starter", "magma chamber below the surface", "chess openings"]


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingServer]:
    srv = serve_embeddings()
    yield srv
    srv.shutdown()


def api_env(server: EmbeddingServer) -> dict[str, str]:
    return {
        "REARAG_EMBEDDER__MODEL": "litellm:openai/minilm",
        "REARAG_EMBEDDER__API_BASE": api_base(server),
    }


def search(collection: str, query: str, env: dict[str, str]) -> list[dict[str, Any]]:
    proc = rearag(
        "search", query, "-c", collection, "--mode", "dense", "-k", "3", "--json", env=env
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_embeddings_server_gives_the_local_embedders_results(tmp_path, server):
    docs = write_docs(tmp_path / "docs")
    home = {"REARAG_HOME": str(tmp_path / "home")}
    api = {**home, **api_env(server)}
    assert rearag("ingest", str(docs), "-c", "local", "--json", env=home).returncode == 0
    proc = rearag("ingest", str(docs), "-c", "api", "--json", env=api)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chunks_added"] == 3
    for query in QUERIES:
        local, served = search("local", query, home), search("api", query, api)
        assert [h["id"] for h in served] == [h["id"] for h in local]
        assert [h["score"] for h in served] == pytest.approx([h["score"] for h in local], abs=1e-5)

    # Each collection refuses the other's embedder, and says how to proceed.
    wrong = rearag("search", "yeast", "-c", "api", env=home)
    assert wrong.returncode == 1
    assert_one_line_error(wrong, "was built with embedder 'litellm:openai/minilm'")
    assert 'set embedder.model = "litellm:openai/minilm"' in wrong.stderr

    # The same model name answering with vectors of another size.
    server.size = 128
    try:
        cut = rearag("search", "yeast", "-c", "api", env=api)
    finally:
        server.size = None
    assert cut.returncode == 1
    assert_one_line_error(cut, "gives vectors of size 128 but collection 'api' holds vectors of")


def test_bfloat16_where_it_is_slow_embeds_in_fp32_and_says_so(tmp_path):
    docs = write_docs(tmp_path / "docs")
    home = {"REARAG_HOME": str(tmp_path / "home")}
    # oneDNN then uses no AMX (and bfloat16 ran at 0.15x fp32 with these instructions).
    slow = {**home, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    proc = rearag(
        "--embedder-backend", "torch-bf16", "ingest", str(docs), "-c", "docs", "--json", env=slow
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["chunks_added"] == 3
    assert proc.stderr.splitlines() == [
        'embedder.backend = "torch-bf16": local:all-minilm-l6-v2 embeds in fp32, as this CPU '
        "has no AMX, without which bfloat16 is slower than fp32"
    ]
    # Searched with torch's vectors: the collection holds the model's own.
    slow["REARAG_EMBEDDER__BACKEND"] = "torch-bf16"
    got, expected = search("docs", QUERIES[0], slow), search("docs", QUERIES[0], home)
    assert [h["id"] for h in got] == [h["id"] for h in expected]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in expected], abs=1e-5)
