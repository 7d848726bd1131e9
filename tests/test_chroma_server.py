"""Ingest and search against a real `chroma run` server on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import chromadb
import pytest

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # starts a Chroma server and loads the real embedder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path: Path):
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    proc = subprocess.Popen(
        [
            str(chroma),
            "run",
            "--path",
            str(tmp_path / "server-data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail("chroma server did not start")
            time.sleep(0.2)
    yield port
    proc.terminate()
    proc.wait(timeout=30)


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


def test_unreachable_server_is_a_clear_error(home):
    settings = load_settings(
        **{"store.chroma_host": "127.0.0.1", "store.chroma_port": _free_port()}
    )
    with pytest.raises(RearagError, match="cannot reach the Chroma server"):
        Store(settings, "served")
