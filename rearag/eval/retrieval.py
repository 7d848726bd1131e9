"""Retrieval evaluation on a BEIR-layout dataset with ir-measures (nDCG@10, Recall@100)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ir_measures
from ir_measures import R, nDCG
from pydantic import BaseModel
from tqdm import tqdm

from rearag.core.config import SearchMode, Settings
from rearag.core.errors import InvalidInputError
from rearag.eval.beir import (
    BeirDataset,
    BeirSplit,
    corpus_collection,
    load_beir,
    qrels_of,
    split_tag,
    write_run,
)
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

DEPTH = 100


class RetrievalResult(BaseModel):
    mode: str
    ndcg_10: float
    recall_100: float
    queries: int
    collection: str
    run_file: str


def dataset_collection(dataset: BeirDataset, settings: Settings) -> str:
    """The dataset's collection, named by its folder and fingerprinted (`corpus_collection`)."""
    return corpus_collection(dataset.corpus, settings, dataset.root.resolve().name)


def ingested_store(corpus: Path, settings: Settings, name: str, *, progress: bool) -> Store:
    """Collection `name` holding the corpus.jsonl `corpus` (re-ingesting an unchanged corpus
    embeds nothing)."""
    store = Store(settings, name, create=True)
    report = ingest([corpus], store, progress=progress)
    if report.skipped:
        raise InvalidInputError(f"{corpus}: {report.skipped[0].reason}")
    return store


def dataset_retriever(dataset: BeirDataset, settings: Settings, *, progress: bool) -> Retriever:
    """A retriever over the dataset's corpus, ingested once into a fingerprinted collection."""
    store = ingested_store(
        dataset.corpus, settings, dataset_collection(dataset, settings), progress=progress
    )
    return Retriever(settings=settings, store=store)


def doc_ranking(retriever: Retriever, query: str, mode: SearchMode | str, depth: int) -> list[str]:
    """Document ids for a query, best first: chunk hits mapped to documents, best chunk wins."""
    # Documents have several chunks, so ask for more chunks than documents needed.
    scored = retriever.ranked_ids(query, depth * 3, mode)
    meta = retriever.store.collection.get(ids=[i for i, _ in scored], include=["metadatas"])
    doc_of = {i: m["doc_id"] for i, m in zip(meta["ids"], meta["metadatas"], strict=True)}
    docs = dict.fromkeys(doc_of[i] for i, _ in scored if i in doc_of)
    return list(docs)[:depth]


def evaluate_retrieval(
    root: Path,
    settings: Settings,
    modes: Sequence[SearchMode | str],
    run_dir: Path | None = None,
    *,
    split: BeirSplit = "test",
    progress: bool = True,
) -> list[RetrievalResult]:
    checked = [SearchMode.of(m) for m in modes]
    dataset = load_beir(root, split)
    retriever = dataset_retriever(dataset, settings, progress=progress)
    name = retriever.store.name
    run_dir = run_dir or settings.home / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    qrels = qrels_of(dataset)
    results = []
    for mode in checked:
        run_file = run_dir / f"{name}{split_tag(split)}.{mode}.trec"
        ranked = {
            qid: doc_ranking(retriever, text, mode, DEPTH)
            for qid, text in tqdm(
                dataset.queries.items(), desc=mode, unit="query", disable=not progress
            )
        }
        run = write_run(run_file, ranked, f"rearag-{mode}")
        agg = ir_measures.calc_aggregate([nDCG @ 10, R @ 100], qrels, run)
        results.append(
            RetrievalResult(
                mode=mode,
                ndcg_10=agg[nDCG @ 10],
                recall_100=agg[R @ 100],
                queries=len(dataset.queries),
                collection=name,
                run_file=str(run_file),
            )
        )
    return results
