"""Retrieval benchmark: ingest throughput against raw embedding, search latency against a raw
Chroma query, and the embedder backends (torch in fp32 and bfloat16, ONNX, ONNX int8) side by
side: speed and dense retrieval quality. Ratios are taken within this one process; times are
medians of several runs.

    .venv/bin/python bench/retrieval.py [--dataset ../shared/data/cranfield] [--repeats 3]

Writes bench/results/retrieval.md. The corpus is Cranfield (BEIR layout): 200-token chunks for
the throughput and the ~1k-chunk index, 20-token chunks of the same corpus for the ~20k index;
backend quality also on squad-dev (BEIR layout beside it: one gold paragraph per question).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common  # first: the offline, one-thread environment before any model library

from rearag.core.config import SearchMode, Settings, load_settings
from rearag.eval.beir import load_beir, qrels_of
from rearag.eval.retrieval import evaluate_retrieval
from rearag.tools.embedder import RearagEmbeddingFunction, why_bf16_is_slow
from rearag.tools.ingest import ingest, plan_document
from rearag.tools.loaders import load_file
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

RESULTS = common.RESULTS / "retrieval.md"


def subset_corpus(dataset: Path, docs: int, out: Path) -> Path:
    lines = (dataset / "corpus.jsonl").read_text().splitlines()[:docs]
    out.write_text("\n".join(lines) + "\n")
    return out


def chunk_texts(settings: Settings, corpus: Path) -> list[str]:
    """The texts an ingest of `corpus` embeds."""
    probe = Store(settings, "bench-probe", create=True)
    texts = [p.text for d in load_file(corpus, 10**9).docs for p in plan_document(d, probe)]
    probe.drop()
    return texts


def throughput(
    settings: Settings, corpus: Path, texts: list[str], repeats: int
) -> dict[str, float]:
    """Chunks per second: the whole ingest (read, chunk, embed, write Chroma, build BM25) against
    `encode` alone on the very same chunk texts, alternating runs."""
    encode = RearagEmbeddingFunction(settings.embedder, settings.models_dir).encode
    raw, pipeline = [], []
    for run in range(repeats):
        start = time.perf_counter()
        encode(texts)
        raw.append(len(texts) / (time.perf_counter() - start))
        store = Store(settings, f"bench-ingest-{run}", create=True)
        start = time.perf_counter()
        report = ingest([corpus], store, progress=False)
        pipeline.append(report.chunks_added / (time.perf_counter() - start))
        store.drop()
    return {
        "chunks": len(texts),
        "raw": statistics.median(raw),
        "pipeline": statistics.median(pipeline),
    }


@dataclasses.dataclass
class Backend:
    label: str
    options: dict[str, object]
    quality: bool = True  # threads change speed only: quality is measured once per backend
    chunks_s: list[float] = dataclasses.field(default_factory=list)
    query_s: list[float] = dataclasses.field(default_factory=list)
    scores: dict[str, float] = dataclasses.field(default_factory=dict)


BACKENDS = [
    Backend("torch", {}),
    Backend("torch-bf16", {"embedder.backend": "torch-bf16"}),
    Backend(
        "torch-bf16, threads = 0", {"embedder.backend": "torch-bf16", "embedder.threads": 0}, False
    ),
    Backend("onnx", {"embedder.backend": "onnx"}),
    Backend("onnx-int8", {"embedder.backend": "onnx-int8"}),
    Backend(
        "onnx-int8, threads = 0", {"embedder.backend": "onnx-int8", "embedder.threads": 0}, False
    ),
]


def compare_backends(
    home: Path, texts: list[str], queries: list[str], datasets: list[Path], repeats: int
) -> list[Backend]:
    """Each backend in its own home (its own collections and ONNX export): chunks/s encoding
    the ingest chunk texts and one query's embedding time, the backends taking turns in each
    repeat so that load from elsewhere falls on all of them; then dense nDCG@10 (and R@5) with
    the corpus embedded by that backend."""
    import ir_measures
    from ir_measures import R

    settings = {
        b.label: load_settings(
            home=home / str(b.options.get("embedder.backend", "torch")), **b.options
        )
        for b in BACKENDS
    }
    embedders = {
        label: RearagEmbeddingFunction(s.embedder, s.models_dir) for label, s in settings.items()
    }
    for embedder in embedders.values():
        embedder.encode(texts[:8])  # load, or export to ONNX, outside the timing
    for _ in range(repeats):
        for b in BACKENDS:
            encode = embedders[b.label].encode
            start = time.perf_counter()
            encode(texts)
            b.chunks_s.append(len(texts) / (time.perf_counter() - start))
            for query in queries:
                start = time.perf_counter()
                encode([query])
                b.query_s.append(time.perf_counter() - start)
    for b in BACKENDS:
        if not b.quality:
            continue
        for root in datasets:
            print(f"quality: {b.label} on {root.name}", file=sys.stderr)
            [result] = evaluate_retrieval(root, settings[b.label], ["dense"], progress=False)
            run = ir_measures.read_trec_run(result.run_file)
            recall_5 = ir_measures.calc_aggregate([R @ 5], qrels_of(load_beir(root)), run)[R @ 5]
            b.scores.update({f"{root.name} nDCG@10": result.ndcg_10, f"{root.name} R@5": recall_5})
    return BACKENDS


def backend_table(backends: list[Backend], texts: int, queries: int, repeats: int) -> list[str]:
    base = backends[0]
    columns = list(base.scores)
    lines = [
        "| backend | chunks/s | ratio | query ms | speed-up | " + " | ".join(columns) + " |",
        "| --- | ---: | ---: | ---: | ---: |" + " ---: |" * len(columns),
    ]
    for b in backends:
        rate, ms = statistics.median(b.chunks_s), 1000 * statistics.median(b.query_s)
        base_ms = 1000 * statistics.median(base.query_s)
        quality = [f"{b.scores[c]:.4f}" if c in b.scores else "=" for c in columns]
        lines.append(
            f"| {b.label} | {rate:.1f} | {rate / statistics.median(base.chunks_s):.2f} | "
            f"{ms:.2f} | {base_ms / ms:.2f} | " + " | ".join(quality) + " |"
        )
    return [
        f"{texts} Cranfield chunk texts encoded as one ingest batch list, and {queries} queries "
        f"embedded one at a time, x {repeats} (medians; ratio and speed-up against torch). "
        "Quality: dense search, each corpus embedded by that backend (all queries).",
        "",
        *lines,
    ]


def latencies(
    settings: Settings, name: str, corpus: Path, queries: list[str], k: int, repeats: int
) -> dict[str, object]:
    store = Store(settings, name, create=True)
    ingest([corpus], store, progress=True)
    retriever = Retriever(settings=settings, store=store)
    vectors = store.embedding.encode(queries)
    rows: dict[str, list[float]] = {"raw collection.query": [], "query embedding": []}
    rows.update({mode: [] for mode in SearchMode})
    for mode in SearchMode:  # warm-up: BM25 load, HNSW in memory
        retriever.search(queries[0], k=k, mode=mode)
    for _ in range(repeats):
        for query, vector in zip(queries, vectors, strict=True):
            start = time.perf_counter()
            store.collection.query(query_embeddings=[vector], n_results=k)
            rows["raw collection.query"].append(time.perf_counter() - start)
            start = time.perf_counter()
            store.embedding.encode([query])
            rows["query embedding"].append(time.perf_counter() - start)
            for mode in SearchMode:
                start = time.perf_counter()
                retriever.search(query, k=k, mode=mode)
                rows[mode].append(time.perf_counter() - start)
    base = statistics.median(rows["raw collection.query"])
    return {
        "chunks": store.count(),
        "rows": {
            label: {
                "p50_ms": 1000 * statistics.median(v),
                "p95_ms": 1000 * common.percentile(v, 0.95),
                "ratio": statistics.median(v) / base,
            }
            for label, v in rows.items()
        },
    }


def main() -> None:
    parser = common.beir_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--throughput-docs", type=int, default=150)
    parser.add_argument("--small-docs", type=int, default=700)
    parser.add_argument("--large-docs", type=int, default=1400)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument(
        "--squad",
        type=Path,
        default=common.SQUAD,
    )
    args = parser.parse_args()
    common.check_beir(args.dataset)

    home = Path(tempfile.mkdtemp(prefix="rearag-bench-"))
    settings = load_settings(home=home)
    tiny = load_settings(**{"home": home, "ingest.chunk_tokens": 20, "ingest.chunk_overlap": 4})
    queries = [
        json.loads(line)["text"]
        for line in (args.dataset / "queries.jsonl").read_text().splitlines()[: args.queries]
    ]

    tp_corpus = subset_corpus(args.dataset, args.throughput_docs, home / "tp.jsonl")
    texts = chunk_texts(settings, tp_corpus)
    tp = throughput(settings, tp_corpus, texts, args.repeats)
    print(f"throughput: {tp}", file=sys.stderr)
    backends = compare_backends(
        home / "backends", texts, queries, [args.dataset, args.squad], args.repeats
    )
    small = latencies(
        settings,
        "bench-1k",
        subset_corpus(args.dataset, args.small_docs, home / "small.jsonl"),
        queries,
        10,
        args.repeats,
    )
    large = latencies(
        tiny,
        "bench-20k",
        subset_corpus(args.dataset, args.large_docs, home / "large.jsonl"),
        queries,
        10,
        args.repeats,
    )

    lines = [
        "# Retrieval benchmark",
        "",
        f"`python bench/retrieval.py` on {os.cpu_count()} cores, OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}, embedder {settings.embedder.model}, Cranfield corpus; "
        f"medians of {args.repeats} runs. Machine shared with other work: read the ratios.",
        "",
        "## Ingest throughput",
        "",
        "| what | chunks | chunks/s | ratio to raw |",
        "| --- | ---: | ---: | ---: |",
        f"| raw `encode` of the chunk texts | {tp['chunks']} | {tp['raw']:.1f} | 1.00 |",
        f"| `rearag ingest` (read, chunk, embed, Chroma, BM25) | {tp['chunks']} | "
        f"{tp['pipeline']:.1f} | {tp['pipeline'] / tp['raw']:.2f} |",
        "",
        "Goal: ratio ≥ 0.85 (the pipeline adds little beyond embedding).",
        "",
        "## Embedder backends",
        "",
        *backend_table(backends, len(texts), len(queries), args.repeats),
        "",
        "Goal: ≥ 2x chunks/s and ≥ 2x faster query embedding than torch, quality within 0.005.",
        "torch-bf16 is fast only on CPUs with AMX (this one: "
        f"{'no' if why_bf16_is_slow('cpu') else 'yes'}); elsewhere it embeds in",
        "fp32 and says so. torch, torch-bf16 and onnx give the model's own vectors, so a",
        "collection ingested with one is searched with any other.",
        "",
        "## Search latency (k = 10)",
        "",
    ]
    for label, result in (("~1k chunks", small), ("~20k chunks", large)):
        lines += [
            f"### {label} ({result['chunks']} chunks, {len(queries)} queries x {args.repeats})",
            "",
            "| search | p50 ms | p95 ms | p50 ratio to raw query |",
            "| --- | ---: | ---: | ---: |",
        ]
        for row, v in result["rows"].items():
            lines.append(f"| {row} | {v['p50_ms']:.2f} | {v['p95_ms']:.2f} | {v['ratio']:.1f} |")
        lines.append("")
    lines += [
        "The raw baseline is `collection.query` with a precomputed query embedding; every rearag",
        "mode but bm25 embeds the query first (the 'query embedding' row), which dominates.",
    ]
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
