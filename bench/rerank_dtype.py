"""The shipped reranker (query likelihood with the bundled SmolLM2-135M) in bfloat16 against
float32: nDCG@10 of each on judged data nobody here wrote, the paired bootstrap interval of
their difference, how often they keep the same top passage, and seconds per query.

    .venv/bin/python bench/rerank_dtype.py [--queries 60] [DATASET ...]

Default datasets: ../shared/data/cranfield and ../shared/data/scifact-train (first N queries
of each, hybrid first stage, the shipped depth of 10). Both runs in this one process, on every
core. bfloat16 is what `dtype = "auto"` picks on a CPU with AMX or AVX512-BF16 or a CUDA GPU;
elsewhere (AVX2 CPUs) it is slower than float32 and "auto" keeps float32. The speed ratio is
the CPU's own: bench/results/rerank_dtype.md keeps the runs of other CPUs below this one.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import common  # first: the offline environment before any model library
import ir_measures
import torch
from ir_measures import nDCG

from rearag.core.config import Settings, load_settings
from rearag.eval.beir import load_beir, qrels_of
from rearag.eval.rerank import evaluate_rerank
from rearag.eval.stats import paired_bootstrap
from rearag.policies.reranker import Reranker
from rearag.tools.embedder import why_bf16_is_slow

RESULTS = common.RESULTS / "rerank_dtype.md"
DATASETS = [common.CRANFIELD, common.DATA / "scifact-train"]


def with_dtype(settings: Settings, dtype: str) -> Settings:
    return settings.model_copy(
        update={"reranker": settings.reranker.model_copy(update={"dtype": dtype})}
    )


def split_of(dataset: Path) -> str:
    """The dataset's judged split: test, else the one it has (scifact-train: train)."""
    return "test" if (dataset / "qrels" / "test.tsv").is_file() else "train"


def per_query(run_file: Path, dataset: Path, evaluated: set[str]) -> dict[str, float]:
    qrels = [q for q in qrels_of(load_beir(dataset, split_of(dataset))) if q.query_id in evaluated]
    run = list(ir_measures.read_trec_run(str(run_file)))
    return {m.query_id: m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", type=Path, default=DATASETS)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--home", type=Path, help="reuse this REARAG_HOME (its collections)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    home = args.home or common.bench_home("rearag-dtype-")
    settings = load_settings(home=home)
    rows = [
        "| dataset | queries | nDCG@10 first stage | float32 | bfloat16 | bf16 - fp32 [95 % CI] "
        "| same top passage | s/query fp32 | s/query bf16 | speed |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for dataset in args.datasets:
        common.check_beir(dataset)
        results, scores, tops = {}, {}, {}
        for dtype in ("float32", "bfloat16"):
            run_dir = home / f"runs-{dataset.name}-{dtype}"
            reranker = Reranker(settings=with_dtype(settings, dtype), cache=False)
            result = evaluate_rerank(
                dataset,
                settings,
                reranker,
                depth=reranker.config.depth,
                max_queries=args.queries,
                run_dir=run_dir,
                split=split_of(dataset),
            )
            [run_file] = [
                p
                for p in run_dir.glob(f"*.{reranker.policy.name}.*.trec")
                if dataset.name in p.name
            ]
            evaluated = {line.split()[0] for line in run_file.read_text().splitlines()}
            results[dtype], scores[dtype] = result, per_query(run_file, dataset, evaluated)
            tops[dtype] = {
                line.split()[0]: line.split()[2]
                for line in run_file.read_text().splitlines()
                if line.split()[3] == "1"
            }
        judged = sorted(scores["float32"])
        gain = paired_bootstrap(
            [scores["bfloat16"].get(q, 0.0) for q in judged], [scores["float32"][q] for q in judged]
        )
        same = sum(tops["float32"][q] == tops["bfloat16"].get(q) for q in tops["float32"])
        fp32, bf16 = results["float32"], results["bfloat16"]
        rows.append(
            f"| {dataset.name} | {fp32.queries} | {fp32.ndcg_10_before:.4f} "
            f"| {fp32.ndcg_10_after:.4f} | {bf16.ndcg_10_after:.4f} "
            f"| {gain.mean:+.4f} [{gain.low:+.4f}, {gain.high:+.4f}] "
            f"| {same}/{len(tops['float32'])} | {fp32.seconds_per_query:.2f} "
            f"| {bf16.seconds_per_query:.2f} "
            f"| {fp32.seconds_per_query / bf16.seconds_per_query:.2f}x |"
        )
        print(rows[-1], flush=True)
    slow = why_bf16_is_slow("cpu", avx512_bf16=True)
    common.write_results(
        RESULTS,
        "# The shipped reranker in bfloat16 against float32\n\n"
        f"`python bench/rerank_dtype.py --queries {args.queries}`: query likelihood (UPR) with "
        "the bundled SmolLM2-135M, hybrid first stage, depth 10, both runs in one process on "
        f"{os.cpu_count()} threads, the window cache off.\n\n" + "\n".join(rows) + "\n\n"
        "How to read it: the interval is the paired bootstrap of bfloat16's nDCG@10 minus "
        "float32's over the same queries; one that holds zero means no difference was found. "
        f'On this CPU `dtype = "auto"` picks '
        f"{'float32 (' + slow + ')' if slow else 'bfloat16'}. The speed ratio is this CPU's: "
        "AMX gives bfloat16 the most, AVX512-BF16 less; without either (AVX2 only) bfloat16 "
        'is slower than float32, which is why "auto" keeps float32 there.\n',
        keep_other_cpus=True,
    )


if __name__ == "__main__":
    main()
