"""Metadata filters: search latency with and without a selective filter, in every mode, and a
check that every filtered hit matches (BM25 included). Ratios are taken within this one
process; times are medians over the queries.

    .venv/bin/python bench/filters.py [--dataset ../shared/data/cranfield] [--queries 50]

The corpus is Cranfield (BEIR layout), each record given a `bucket` (its number modulo 10)
and a `year` (1950 + its number modulo 20) in its JSONL metadata. Writes
bench/results/filters.md.
"""

from __future__ import annotations

import json
import statistics
import time

import common  # first: the offline, one-thread environment before any model library

from rearag.core.config import load_settings
from rearag.core.filters import Where
from rearag.eval.beir import load_beir
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

RESULTS = common.RESULTS / "filters.md"
FILTERS = {
    "none": None,
    "bucket = 3 (10 %)": {"bucket": 3},
    "year >= 1965 (25 %)": {"year": {"$gte": 1965}},
    "bucket in 1, 2 and year < 1960 (10 %)": {
        "bucket": {"$in": [1, 2]},
        "year": {"$lt": 1960},
    },
}


def main() -> None:
    parser = common.beir_parser(__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    common.check_beir(args.dataset)
    home = common.bench_home("rearag-filters-")
    corpus = home / "corpus.jsonl"
    lines = (args.dataset / "corpus.jsonl").read_text().splitlines()
    with corpus.open("w") as out:
        for i, line in enumerate(lines):
            record = json.loads(line)
            record["metadata"] = {"bucket": i % 10, "year": 1950 + i % 20}
            out.write(json.dumps(record) + "\n")
    settings = load_settings(home=home)
    store = Store(settings, "filters", create=True)
    if store.count() == 0:
        ingest([corpus], store)
    retriever = Retriever(settings=settings, store=store)
    queries = [q for _, q in list(load_beir(args.dataset).queries.items())[: args.queries]]

    rows, leaks = [], 0
    for mode in ("bm25", "dense", "hybrid"):
        base = None
        for name, spec in FILTERS.items():
            where = Where.parse(spec)
            first = time.perf_counter()
            retriever.search(queries[0], k=10, mode=mode, where=where)  # warms the models
            first = time.perf_counter() - first
            times = []
            for query in queries:
                start = time.perf_counter()
                hits = retriever.search(query, k=10, mode=mode, where=where)
                times.append(time.perf_counter() - start)
                leaks += sum(where is not None and not where.matches(h.metadata) for h in hits)
            median = statistics.median(times)
            base = base or median
            rows.append((mode, name, median, median / base, first))
            print(f"{mode:7} {name:40} {median * 1000:8.1f} ms  {median / base:5.2f}x")

    table = [
        "| mode | filter | median ms | vs none | first search ms |",
        "| --- | --- | ---: | ---: | ---: |",
        *(f"| {m} | {n} | {t * 1000:.1f} | {r:.2f}x | {f * 1000:.1f} |" for m, n, t, r, f in rows),
    ]
    text = "\n".join(
        [
            "# Search with metadata filters",
            "",
            f"`python bench/filters.py --queries {args.queries}`: Cranfield ({store.count()} "
            "chunks), k = 10, one CPU thread, medians over the queries. Each record carries "
            "`bucket` (0-9) and `year` (1950-1969) in its JSONL metadata. The first search "
            "with a filter evaluates it on every chunk's metadata (read once per change of the "
            "collection: the 'first search' of bm25 with the first filter pays that read); "
            "later searches with the same filter reuse the ids it kept, in every mode.",
            "",
            *table,
            "",
            f"Filtered hits that do not match their filter: {leaks} (BM25, dense and hybrid).",
        ]
    )
    common.write_results(RESULTS, text)
    if leaks:
        raise SystemExit(f"{leaks} filtered hits did not match")


if __name__ == "__main__":
    main()
