"""Several processes on one collection: a running `rearag serve` finds what `rearag ingest` in
another process wrote, in every search mode, without a restart; and concurrent ingests of the
same files each report the chunks they wrote, not every chunk."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
from fakes.cli import RAGBIN
from fakes.serving import free_port, scripted_env, start_server

from rearag.core.config import Settings
from rearag.tools.ingest import ingest
from rearag.tools.store import Store

MODES = ("bm25", "dense", "hybrid")
LIGHTHOUSE = "Lighthouses guide ships along rocky coasts at night with a bright rotating lamp."
TEA = "Green tea is brewed from the steamed leaves of the Camellia sinensis plant."
GLACIER = "Glaciers carve deep U-shaped valleys and leave moraines of rock behind them."
QUOKKA = "Quokkas are small smiling marsupials that live on Rottnest Island near Perth."
FILES = 40  # one chunk each; a first ingest takes over a second to write them all


def _env(home: Path, collection: str) -> dict[str, str]:
    # No LLM is ever called: every node points at a closed loopback port.
    return {
        **os.environ,
        "REARAG_CONFIG": "",
        **scripted_env(home, "http://127.0.0.1:9", collection),
    }


def _ingest(docs: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(RAGBIN), "ingest", str(docs), "--json"],
        env=env,
        cwd=docs.parent,  # no stray rearag.toml
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _report(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out)


def _texts(port: int, query: str, mode: str, k: int = 1) -> list[str]:
    body = {"query": query, "k": k, "mode": mode}
    resp = httpx.post(f"http://127.0.0.1:{port}/v1/search", json=body, timeout=60)
    assert resp.status_code == 200, resp.text
    return [hit["text"] for hit in resp.json()["results"]]


def test_a_running_server_finds_edited_and_new_files(settings: Settings, tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text(LIGHTHOUSE)
    (docs / "tea.txt").write_text(TEA)
    ingest([docs], Store(settings, "fresh", create=True), progress=False)
    env = _env(settings.home, "fresh")
    port = free_port()
    server = start_server([], env, port, tmp_path / "serve.log")
    try:
        for mode in MODES:  # the server loads both indexes before the changes
            assert "Lighthouses" in _texts(port, "lighthouse guiding ships at night", mode)[0]

        # An edit: one chunk replaced, so the number of chunks is what the server last saw.
        (docs / "notes.txt").write_text(GLACIER)
        report = _report(_ingest(docs, env))
        assert report["chunks_added"] == report["chunks_deleted"] == 1
        assert report["chunks_total"] == 2
        for mode in MODES:
            assert "moraines" in _texts(port, "glacier moraine valleys", mode)[0], mode
            assert not any("Lighthouses" in t for t in _texts(port, "lighthouse ships", mode, 3))

        (docs / "quokka.txt").write_text(QUOKKA)
        report = _report(_ingest(docs, env))
        assert (report["chunks_added"], report["chunks_total"]) == (1, 3)
        for mode in MODES:
            assert "Quokkas" in _texts(port, "quokka marsupial on Rottnest Island", mode)[0], mode
    finally:
        server.terminate()
        server.wait(timeout=30)


def _stopped(proc: subprocess.Popen[str]) -> bool:
    return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def _pause_outside_the_lock(proc: subprocess.Popen[str], lock: Path) -> None:
    """Stop `proc` (SIGSTOP) at a moment it does not hold the collection's lock, which another
    ingest would otherwise wait for forever. Returns at once if `proc` has ended."""
    with lock.open("a") as lock_file:
        while True:
            proc.send_signal(signal.SIGSTOP)
            while proc.poll() is None and not _stopped(proc):
                time.sleep(0.001)  # the signal is sent, not yet acted on
            if proc.returncode is not None:
                return
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                proc.send_signal(signal.SIGCONT)
                time.sleep(0.001)
                continue
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            return


def test_concurrent_ingests_of_the_same_files_count_each_chunk_once(
    settings: Settings, tmp_path: Path
):
    """The second ingest plans (every chunk but the first write's is new) while the first is
    stopped half-way, runs to its end, and then the first goes on."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(FILES):
        (docs / f"note{i:02d}.txt").write_text(f"Note {i} on tides: observation number {i}.")
    env = {**_env(settings.home, "both"), "REARAG_EMBEDDER__BATCH_SIZE": "1"}  # 4 chunks a write
    first = _ingest(docs, env)
    lexical = settings.home / "bm25" / "local"
    deadline = time.monotonic() + 120
    while not (lexical / "both.pending.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.002)  # until its first write is stored and logged
    _pause_outside_the_lock(first, lexical / "both.lock")
    try:
        assert first.poll() is None, "the first ingest ended before it could be paused"
        second = _report(_ingest(docs, env))
    finally:
        first.send_signal(signal.SIGCONT)
    reports = [_report(first), second]
    assert sum(r["chunks_added"] for r in reports) == FILES
    assert 0 < reports[0]["chunks_added"] < FILES  # it really was half-way
    assert [r["chunks_total"] for r in reports] == [FILES, FILES]
    store = Store(settings, "both")
    assert store.count() == FILES
    assert len(store.lexical("observation", 2 * FILES)) == FILES == store.bm25.size()
