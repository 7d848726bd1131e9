"""An ingest stopped by Ctrl-C or killed outright leaves a usable collection; a re-run
completes it to exactly what an uninterrupted ingest gives."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from fakes.cli import RAGBIN

from rearag.core.config import load_settings
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

TOPICS = ["rivers", "comets", "violins", "glaciers", "bridges", "orchids", "tides", "lenses"]
# Enough documents that the ingest is still running when the signal arrives, even on an idle
# machine (48 once finished inside the test's wait and the Ctrl-C found nothing to stop).
DOCS = 240


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(DOCS):
        topic = TOPICS[i % len(TOPICS)]
        (folder / f"doc{i:02d}.txt").write_text(
            f"Note {i} on {topic}: observation number {i} about {topic} and their behaviour."
        )
    return folder


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_ingest_is_usable_and_rerun_completes(home, corpus, sig):
    env = {**os.environ, "REARAG_EMBEDDER__BATCH_SIZE": "1"}  # a write every 4 chunks
    args = [str(RAGBIN), "ingest", str(corpus), "-c", "intr", "-q"]
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as a terminal delivers it: a runner started in the background (`cmd &` in a
        # script) ignores SIGINT, and the ingest would inherit that and never be interrupted.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # The BM25 change log appears once the first write is stored and logged (the .stale
    # marker only exists while a write is under way: a kill then could leave nothing stored).
    written = home / "bm25" / "local" / "intr.pending.jsonl"
    deadline = time.monotonic() + 120
    while not written.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest ended before it could be interrupted"
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, stderr
        assert "interrupted" in stderr and "Traceback" not in stderr

    settings = load_settings()
    partial = Store(settings, "intr").count()
    assert 0 < partial < DOCS  # it really stopped half-way
    hits = Retriever("intr", settings=settings).search("observation", k=3)
    assert hits  # usable as it is
    del hits

    rerun = subprocess.run([*args, "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f'"chunks_total": {DOCS}' in rerun.stdout
    store = Store(load_settings(), "intr")
    assert store.count() == DOCS
    top = Retriever("intr", settings=store.settings, store=store).search("comets", k=6, mode="bm25")
    assert len(top) == 6 and all("comets" in h.text for h in top)
