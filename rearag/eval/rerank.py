"""Reranking evaluation on a BEIR-layout dataset: first-stage retrieval, rerank the top
`depth` documents, nDCG@10 before and after (ir-measures), window outcomes and time per query."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import ir_measures
from ir_measures import nDCG
from pydantic import BaseModel
from tqdm import tqdm

from rearag.core.config import SearchMode, Settings
from rearag.core.errors import InvalidInputError
from rearag.core.types import Passage
from rearag.eval.beir import BeirSplit, corpus_texts, load_beir, qrels_of, split_tag, write_run
from rearag.eval.retrieval import dataset_retriever, doc_ranking
from rearag.eval.stats import Interval, paired_bootstrap
from rearag.policies.reranker import Reranker
from rearag.tools.llm import Batched


class RerankEvalResult(BaseModel):
    policy: str
    model: str
    strategy: str
    first_stage: str
    depth: int
    queries: int
    ndcg_10_before: float
    ndcg_10_after: float
    gain: Interval  # after - before per query, paired bootstrap 95 % interval
    top_kept: float  # share of queries whose first-stage top document stays first
    windows: int
    window_status: dict[str, int]
    rounds_per_query: float  # model calls that had to wait for each other
    cached_windows: int  # read from the window cache, not sent
    seconds_per_query: float
    prompt_tokens: int
    completion_tokens: int
    run_file: str


def evaluate_rerank(
    root: Path,
    settings: Settings,
    reranker: Reranker,
    *,
    first_stage: SearchMode | str = SearchMode.hybrid,
    depth: int = 20,
    max_queries: int | None = None,
    run_dir: Path | None = None,
    split: BeirSplit = "test",
    query_ids: set[str] | None = None,
    progress: bool = True,
) -> RerankEvalResult:
    first_stage = SearchMode.of(first_stage)
    if depth < 1 or (max_queries is not None and max_queries < 1):
        raise InvalidInputError("--depth and --queries must be at least 1")
    dataset = load_beir(root, split)
    retriever = dataset_retriever(dataset, settings, progress=progress)
    queries = [
        (qid, text)
        for qid, text in dataset.queries.items()
        if query_ids is None or qid in query_ids
    ][:max_queries]
    if not queries:
        raise InvalidInputError("no judged query is left to evaluate: check --held-out")
    before = {qid: doc_ranking(retriever, text, first_stage, depth) for qid, text in queries}
    texts = corpus_texts(dataset.corpus, {d for docs in before.values() for d in docs})

    after: dict[str, list[str]] = {}
    statuses: Counter[str] = Counter()
    tokens, rounds, cached = [0, 0], 0, 0
    began = time.perf_counter()
    # Queries whose windows go to the model together (a local batch, concurrent API requests).
    group = reranker.backend.batch_size if isinstance(reranker.backend, Batched) else 1
    with tqdm(
        total=len(queries),
        desc=f"rerank {reranker.policy.name}",
        unit="query",
        disable=not progress,
    ) as bar:
        for i in range(0, len(queries), group):
            chunk = queries[i : i + group]
            requests = [
                (text, [Passage(id=d, text=texts[d]) for d in before[qid]], None)
                for qid, text in chunk
            ]
            for (qid, _), ranked in zip(chunk, reranker.rank_many(requests), strict=True):
                after[qid] = [r.doc_id for r in ranked.results]
                statuses.update(w.status for w in ranked.windows)
                usage = ranked.usage
                tokens[0] += usage.prompt_tokens
                tokens[1] += usage.completion_tokens
                rounds += max((w.round for w in ranked.windows), default=0)
                cached += sum(w.cached for w in ranked.windows)
            bar.update(len(chunk))
    elapsed = time.perf_counter() - began

    run_dir = run_dir or settings.home / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{retriever.store.name}{split_tag(split)}.{first_stage}-{depth}"
    # Judged queries left out of the run would count as 0 in ir-measures: score only these.
    evaluated = {qid for qid, _ in queries}
    qrels = [q for q in qrels_of(dataset) if q.query_id in evaluated]
    run_before = write_run(run_dir / f"{stem}.trec", before, f"rearag-{first_stage}")
    # Named for the model too: two models of one policy must not overwrite each other's run.
    model_tag = re.sub(r"[^A-Za-z0-9._-]+", "-", reranker.config.model)
    run_file = run_dir / f"{stem}.{reranker.policy.name}.{model_tag}.trec"
    run_after = write_run(run_file, after, f"rearag-{reranker.policy.name}")
    ndcg = nDCG @ 10
    per_query = [
        {m.query_id: m.value for m in ir_measures.iter_calc([ndcg], qrels, run)}
        for run in (run_before, run_after)
    ]
    judged = sorted(per_query[0])  # ir-measures scores queries that have judgments
    return RerankEvalResult(
        policy=reranker.policy.name,
        model=reranker.config.model,
        strategy=reranker.config.strategy,
        first_stage=first_stage,
        depth=depth,
        queries=len(queries),
        ndcg_10_before=ir_measures.calc_aggregate([ndcg], qrels, run_before)[ndcg],
        ndcg_10_after=ir_measures.calc_aggregate([ndcg], qrels, run_after)[ndcg],
        gain=paired_bootstrap(
            [per_query[1].get(q, 0.0) for q in judged], [per_query[0][q] for q in judged]
        ),
        top_kept=sum(after[q][:1] == before[q][:1] for q in after) / max(1, len(after)),
        windows=sum(statuses.values()),
        window_status=dict(statuses),
        rounds_per_query=rounds / max(1, len(queries)),
        cached_windows=cached,
        seconds_per_query=elapsed / max(1, len(queries)),
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        run_file=str(run_file),
    )
