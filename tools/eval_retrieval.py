"""Retrieval evaluation on a BEIR-layout dataset with ir-measures (nDCG@10, Recall@100)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ir_measures
from ir_measures import R, nDCG
from pydantic import BaseModel
from tqdm import tqdm

from rearag.agent.config import Settings
from rearag.tools.errors import RearagError
from rearag.tools.ingest import ingest
from rearag.tools.retriever import MODES, Mode, Retriever
from rearag.tools.store import Store

DEPTH = 100


class RetrievalResult(BaseModel):
    mode: str
    ndcg_10: float
    recall_100: float
    queries: int
    collection: str
    run_file: str


class BeirDataset(BaseModel):
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus(self) -> Path:
        return self.root / "corpus.jsonl"


def load_beir(root: Path) -> BeirDataset:
    """Queries that have judgments, and the judgments, of a BEIR folder (test split)."""
    corpus, queries_file, qrels_file = (
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / "test.tsv",
    )
    for f in (corpus, queries_file, qrels_file):
        if not f.is_file():
            raise RearagError(
                f"{f} not found: a BEIR dataset folder holds corpus.jsonl, queries.jsonl "
                "and qrels/test.tsv"
            )
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if lineno == 1 and parts[0] == "query-id":
            continue
        try:
            qid, did, score = parts[0], parts[1], int(parts[2])
        except (IndexError, ValueError):
            raise RearagError(
                f"{qrels_file}:{lineno}: expected 'query-id<TAB>corpus-id<TAB>score'"
            ) from None
        qrels.setdefault(qid, {})[did] = score
    queries: dict[str, str] = {}
    for lineno, line in enumerate(queries_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            qid, text = str(rec["_id"]), str(rec["text"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise RearagError(f'{queries_file}:{lineno}: expected {{"_id", "text"}}') from None
        if qid in qrels and text.strip():
            queries[qid] = text
    if not queries:
        raise RearagError(f"no query in {queries_file} has judgments in {qrels_file}")
    return BeirDataset(root=root, queries=queries, qrels=qrels)


def dataset_collection(dataset: BeirDataset, settings: Settings) -> str:
    """A collection name fixed by the corpus bytes and the indexing settings, so a second
    evaluation reuses the first one's index."""
    digest = hashlib.sha256(dataset.corpus.read_bytes())
    digest.update(
        f"{settings.embedder.model}|{settings.ingest.chunk_tokens}|{settings.ingest.chunk_overlap}".encode()
    )
    return f"eval-{dataset.root.resolve().name[:40]}-{digest.hexdigest()[:12]}"


def dataset_retriever(dataset: BeirDataset, settings: Settings, *, progress: bool) -> Retriever:
    """A retriever over the dataset's corpus, ingested once into a fingerprinted collection
    (re-ingesting an unchanged corpus embeds nothing)."""
    store = Store(settings, dataset_collection(dataset, settings), create=True)
    ingest([dataset.corpus], store, progress=progress)
    return Retriever(settings=settings, store=store)


def qrels_of(dataset: BeirDataset) -> list[ir_measures.Qrel]:
    return [
        ir_measures.Qrel(q, d, rel) for q, docs in dataset.qrels.items() for d, rel in docs.items()
    ]


def write_run(path: Path, ranked: dict[str, list[str]], tag: str) -> list[ir_measures.ScoredDoc]:
    """A TREC run file; scores strictly decrease with rank, since ir-measures ranks by score."""
    run = []
    with path.open("w") as fh:
        for qid, docs in ranked.items():
            for rank, did in enumerate(docs, start=1):
                score = float(len(docs) - rank + 1)
                run.append(ir_measures.ScoredDoc(qid, did, score))
                fh.write(f"{qid} Q0 {did} {rank} {score:.1f} {tag}\n")
    return run


def doc_ranking(retriever: Retriever, query: str, mode: Mode, depth: int) -> list[str]:
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
    modes: list[str],
    run_dir: Path | None = None,
    *,
    progress: bool = True,
) -> list[RetrievalResult]:
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise RearagError(f"unknown mode {unknown[0]!r}: use {', '.join(MODES)} or all")
    dataset = load_beir(root)
    retriever = dataset_retriever(dataset, settings, progress=progress)
    name = retriever.store.name
    run_dir = run_dir or settings.home / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    qrels = qrels_of(dataset)
    results = []
    for mode in modes:
        run_file = run_dir / f"{name}.{mode}.trec"
        ranked = {
            qid: doc_ranking(retriever, text, mode, DEPTH)  # type: ignore[arg-type]
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
