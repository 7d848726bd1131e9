"""Ingest and search against a real `chroma run` server on loopback."""

from __future__ import annotations

import chromadb

from rearag.core.config import load_settings
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

# The chroma_server fixture (tests/conftest.py): a `chroma run` server, tests/fakes/chroma.py.


def test_ingest_and_search_on_a_chroma_server(home, docs, chroma_server):
    port = chroma_server
    settings = load_settings(**{"store.chroma_host": "127.0.0.1", "store.chroma_port": port})
    store = Store(settings, "served", create=True)
    assert isinstance(store.client, chromadb.api.client.Client)
    report = ingest([docs], store, progress=False)
    assert report.chunks_total == 3

    # The chunks really live in the server: a plain client sees them.
    raw = chromadb.HttpClient(host="127.0.0.1", port=port)
    assert raw.get_collection("served").count() == 3
    assert not (home / "chroma").exists()

    retriever = Retriever("served", settings=settings)
    for mode in ("dense", "bm25", "hybrid"):
        top = retriever.search("wild yeast and flour", k=1, mode=mode)[0]
        assert "Sourdough" in top.text

    again = ingest([docs], Store(settings, "served"), progress=False)
    assert again.chunks_added == 0
