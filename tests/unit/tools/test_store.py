"""The Chroma store: what it refuses (another embedder's vectors, an unreachable server), what
it survives (a run that died after writing, a Ctrl-C inside a Chroma write), and stores on one
`chroma run` server seeing each other's writes."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from fakes.docs import write_docs
from fakes.net import free_port

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # the real embedder, ONNX exports, a Chroma server

LIGHTHOUSE = "Lighthouses guide ships along rocky coasts at night with a bright rotating lamp."
TEA = "Green tea is brewed from the steamed leaves of the Camellia sinensis plant."
GLACIER = "Glaciers carve deep U-shaped valleys and leave moraines of rock behind them."


def _store(settings, name="docs", create=True):
    return Store(settings, name, create=create)


def test_bm25_is_rebuilt_when_a_run_died_after_writing(settings, docs: Path):
    store = _store(settings)
    ingest([docs / "bread.txt"], store, progress=False)
    # A process that added chunks and died before rebuilding the index leaves it stale:
    text = "Glaciers carve U-shaped valleys as they move."
    store.add(
        ["g1"],
        [text],
        [{"source": "/x", "doc_id": "x", "title": ""}],
        store.embedding.encode([text]),
    )
    reopened = Retriever("docs", settings=settings)
    assert reopened.search("glaciers valleys", k=1, mode="bm25")[0].id == "g1"


def test_embedder_mismatch_is_refused(settings, docs: Path):
    ingest([docs], _store(settings), progress=False)
    other = load_settings(**{"home": settings.home, "embedder.model": "hf:/models/other"})
    with pytest.raises(RearagError, match="was built with embedder"):
        Store(other, "docs")


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


def test_unreachable_server_is_a_clear_error(home):
    settings = load_settings(**{"store.chroma_host": "127.0.0.1", "store.chroma_port": free_port()})
    with pytest.raises(RearagError, match="cannot reach the Chroma server"):
        Store(settings, "served")


def test_ctrl_c_during_a_chroma_write_is_not_lost(home, monkeypatch):
    """Chroma's embedded store catches BaseException while it updates its index (its
    embeddings_queue logs and carries on), so a Ctrl-C arriving there was swallowed and the
    ingest ran to its end with exit 0. The write now finishes and the Ctrl-C follows it."""
    store = Store(load_settings(), "ctrl-c", create=True)
    real_add = store.collection.add

    def add_like_chroma(**kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives inside the write
            time.sleep(0.1)
        except BaseException:  # what chromadb does with it
            pass
        real_add(**kwargs)

    monkeypatch.setattr(store.collection, "add", add_like_chroma)
    # Python's own Ctrl-C handling, as in `rearag ingest` (a test runner may ignore SIGINT).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            store.add(["a"], ["some text"], [{"source": "a.txt"}], [[0.1] * 384])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    finally:
        signal.signal(signal.SIGINT, before)
    assert store.count() == 1  # the write was completed, then interrupted


def test_stores_on_a_chroma_server_see_each_others_writes(
    home: Path,
    chroma_server: int,
):
    """With `store.chroma_host` the server's vector index is always current; the BM25 index
    (kept per home) follows the generation number as with the embedded store."""
    settings = load_settings(
        **{"store.chroma_host": "127.0.0.1", "store.chroma_port": chroma_server}
    )
    writer = Store(settings, "served", create=True)
    meta = [{"source": "/a"}, {"source": "/b"}]
    writer.add(["a", "b"], [LIGHTHOUSE, TEA], meta, [[1.0, 0.0], [0.0, 1.0]])
    writer.sync_lexical()
    reader = Store(settings, "served")
    assert reader.lexical("lighthouse", 1)[0][0] == reader.dense([1.0, 0.1], 1)[0][0] == "a"

    writer.delete(["a"])  # an edit: as many chunks as before
    writer.add(["g"], [GLACIER], meta[:1], [[1.0, 0.0]])
    writer.sync_lexical()
    assert reader.lexical("glacier moraines", 1)[0][0] == reader.dense([1.0, 0.1], 1)[0][0] == "g"
