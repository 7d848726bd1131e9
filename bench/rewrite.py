"""Does the rewriter help retrieval? Recall@k and MRR@10 of the gold paragraph on squad-dev,
with the question alone, with the rewriter's queries as the model writes them (parsed, not checked
for topic), and with only the queries that stay on the question's topic (the default).

    .venv/bin/python bench/rewrite.py [--questions 100] [--seed 0] [--dataset DIR]

The rewriter is the embedded default (bundled SmolLM2-135M, greedy, so both rewriter rows see
the same model output). Prints and writes bench/results/rewrite.md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import common  # first: the offline, one-thread environment before any model library

from rearag.agent.graph import load_tools
from rearag.agent.nodes import fused_search, written_queries
from rearag.core.config import load_settings
from rearag.eval.beir import load_beir
from rearag.eval.retrieval import dataset_retriever

RESULTS = common.RESULTS / "rewrite.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=common.SQUAD)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    home = common.bench_home()
    # The rewriter is asked even for first questions here, which the weak default skips.
    settings = load_settings(home=home, **{"rewriter.standalone": True})
    dataset = load_beir(args.dataset)
    collection = dataset_retriever(dataset, settings, progress=True).store.name
    checked = load_tools(settings, collection)
    raw = load_tools(
        settings.model_copy(
            update={"rewriter": settings.rewriter.model_copy(update={"min_similarity": -1.0})}
        ),
        collection,
    )
    qids = sorted(dataset.queries)
    random.Random(args.seed).shuffle(qids)
    qids = qids[: args.questions]

    # Per question, the reciprocal rank of the gold paragraph among the fused passages (0: absent).
    rows: dict[str, list[float]] = {
        "question only": [],
        "rewriter, unchecked": [],
        "rewriter, on topic": [],
    }
    counts: dict[str, list[int]] = {name: [] for name in rows}
    seconds: list[float] = []
    for n, qid in enumerate(qids, 1):
        question, gold = dataset.queries[qid], set(dataset.qrels[qid])
        start = time.perf_counter()
        kept, _, _ = written_queries(checked, question, [], "")
        seconds.append(time.perf_counter() - start)
        unchecked, _, _ = written_queries(raw, question, [], "")
        for name, queries in (
            ("question only", [question]),
            ("rewriter, unchecked", unchecked),
            ("rewriter, on topic", kept),
        ):
            found = [p.metadata.get("doc_id") for p in fused_search(checked, queries)]
            rows[name].append(next((1 / r for r, d in enumerate(found, 1) if d in gold), 0.0))
            counts[name].append(len(queries))
        print(
            f"{n}/{len(qids)}  {question[:60]!r}  kept {kept[1:]}  dropped "
            f"{[q for q in unchecked if q not in kept]}",
            flush=True,
        )

    lines = [
        "# Rewriter and retrieval: where the gold paragraph lands",
        "",
        f"`python bench/rewrite.py --questions {args.questions} --seed {args.seed}`: "
        f"{len(qids)} answerable squad-dev questions (seeded sample), hybrid search, "
        f"{settings.agent.retrieve_k} passages fused by reciprocal rank from the queries; "
        f"rewriter {settings.rewriter.model}, {settings.rewriter.num_queries} queries written, "
        f"topic bar rewriter.min_similarity = {settings.rewriter.min_similarity}; "
        f"{os.cpu_count()} cores, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}. "
        f"Median rewrite time {statistics.median(seconds):.2f} s.",
        "",
        "| queries searched | Recall@1 | Recall@3 | Recall@10 | MRR@10 | queries per question |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, ranks in rows.items():
        recall = [statistics.mean(float(r >= 1 / k) for r in ranks) for k in (1, 3, 10)]
        lines.append(
            f"| {name} | {' | '.join(f'{x:.3f}' for x in recall)} | "
            f"{statistics.mean(ranks):.3f} | {statistics.mean(counts[name]):.2f} |"
        )
    common.write_results(RESULTS, "\n".join(lines))


if __name__ == "__main__":
    main()
