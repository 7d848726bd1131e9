"""Embedders: an OpenAI-compatible embeddings server through litellm (a real HTTP server on
127.0.0.1 serving the bundled MiniLM's vectors), the bfloat16 and ONNX backends, and collections
that refuse an embedder other than the one they were built with."""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_docs
from test_cli import assert_one_line_error, rearag

from rearag.core.config import EmbedderConfig, load_settings
from rearag.core.errors import BackendError, RearagError
from rearag.tools.embedder import (
    LiteLLMEncoder,
    RearagEmbeddingFunction,
    load_sentence_transformer,
    resolve_threads,
    why_bf16_is_slow,
)
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # the real embedder, the CLI in subprocesses, ONNX exports

MINILM = "local:all-minilm-l6-v2"
QUERIES = ["wild yeast starter", "magma chamber below the surface", "chess openings"]


class EmbeddingServer(ThreadingHTTPServer):
    """`POST /v1/embeddings` in OpenAI's shape with the bundled MiniLM's vectors. Knobs for the
    tests: `size` cuts the vectors, `fail` answers that many requests with 503; `requests`
    records each request's input count and `busy_max` the most requests served at once."""

    size: int | None = None
    fail = 0
    requests: list[int]
    busy = busy_max = 0
    lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    server: EmbeddingServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server = self.server
        with server.lock:
            server.requests.append(len(body["input"]))
            server.busy += 1
            server.busy_max = max(server.busy_max, server.busy)
            failing = server.fail > 0
            server.fail -= failing
        try:
            if failing:
                return self._send(503, {"error": {"message": "busy, try again"}})
            texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
            time.sleep(0.05)  # long enough for parallel requests to overlap
            vectors = load_sentence_transformer(MINILM).encode(texts)[:, : server.size]
            data = [
                {"object": "embedding", "index": i, "embedding": _encoded(v, body)}
                for i, v in enumerate(vectors)
            ]
            usage = {"prompt_tokens": 0, "total_tokens": 0}
            self._send(
                200, {"object": "list", "data": data, "model": body["model"], "usage": usage}
            )
        finally:
            with server.lock:
                server.busy -= 1

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


def _encoded(vector: np.ndarray, body: dict[str, Any]) -> Any:
    # The OpenAI client asks for base64 (little-endian float32) unless told otherwise.
    if body.get("encoding_format") == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode()
    return vector.tolist()


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddingServer]:
    srv = EmbeddingServer(("127.0.0.1", 0), Handler)
    srv.requests = []
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def api_base(server: EmbeddingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1"


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


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A REARAG_HOME whose models/ holds the bundled MiniLM exported to ONNX once."""
    home = tmp_path_factory.mktemp("onnx-home")
    RearagEmbeddingFunction(EmbedderConfig(backend="onnx"), home / "models").encode(["x"])
    return home


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


def test_collections_refuse_vectors_of_another_backend(tmp_path, onnx_home):
    home = onnx_home
    torch_settings = load_settings(home=home)
    int8_settings = load_settings(home=home, **{"embedder.backend": "onnx-int8"})
    docs = write_docs(tmp_path / "docs")
    ingest([docs], Store(torch_settings, "torch", create=True), progress=False)
    ingest([docs], Store(int8_settings, "int8", create=True), progress=False)
    with pytest.raises(
        RearagError, match=re.escape('set embedder.model = "local:all-minilm-l6-v2" or')
    ):
        Store(int8_settings, "torch")
    with pytest.raises(RearagError, match=re.escape('with embedder.backend = "onnx-int8"')):
        Store(torch_settings, "int8")
    onnx_settings = load_settings(home=home, **{"embedder.backend": "onnx"})
    assert Store(onnx_settings, "torch").count() == 3  # fp32 ONNX searches torch's vectors


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


def test_threads_do_not_change_vectors(onnx_home):
    texts = ["one thread", "or every core"]
    models = onnx_home / "models"
    one = RearagEmbeddingFunction(EmbedderConfig(backend="onnx", threads=1), models)
    every = RearagEmbeddingFunction(EmbedderConfig(backend="onnx", threads=0), models)
    assert np.allclose(one.encode(texts), every.encode(texts), atol=1e-5)
    assert sorted(p.name for p in models.iterdir()) == ["local-all-minilm-l6-v2.onnx"]


def test_evaluation_collections_are_per_embedder_identity(tmp_path):
    """An int8 evaluation gets an index of its own; fp32 ONNX reuses torch's (same vectors)."""
    from rearag.eval.beir import corpus_collection

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "text": "lava"}\n')

    def name(backend: str) -> str:
        settings = load_settings(home=tmp_path, **{"embedder.backend": backend})
        return corpus_collection(corpus, settings, "c")

    assert name("torch") == name("onnx") != name("onnx-int8")
