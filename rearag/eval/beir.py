"""A BEIR-layout dataset (`corpus.jsonl`, `queries.jsonl`, `qrels/SPLIT.tsv`), the collection
name a corpus is evaluated in, and TREC run files."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import ir_measures
from pydantic import BaseModel

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.tools.embedder import embedder_identity

BeirSplit = Literal["train", "dev", "test"]
BEIR_SPLITS: tuple[BeirSplit, ...] = ("train", "dev", "test")


class BeirDataset(BaseModel):
    root: Path
    split: BeirSplit = "test"
    queries: dict[str, str]  # judged queries only
    qrels: dict[str, dict[str, int]]

    @property
    def corpus(self) -> Path:
        return self.root / "corpus.jsonl"


def load_beir(root: Path, split: BeirSplit = "test") -> BeirDataset:
    """Queries that have judgments in `qrels/SPLIT.tsv`, and those judgments, of a BEIR
    folder. Splits share the corpus; their queries never overlap (BEIR's layout)."""
    if split not in BEIR_SPLITS:
        raise InvalidInputError(f"unknown split {split!r}: use one of {', '.join(BEIR_SPLITS)}")
    corpus, queries_file, qrels_file = (
        root / "corpus.jsonl",
        root / "queries.jsonl",
        root / "qrels" / f"{split}.tsv",
    )
    for f in (corpus, queries_file):
        if not f.is_file():
            raise NotFoundError(
                f"{f} not found: a BEIR dataset folder holds corpus.jsonl, queries.jsonl "
                "and qrels/SPLIT.tsv"
            )
    if not qrels_file.is_file():
        found = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise NotFoundError(
            f"{qrels_file} not found: {root} has "
            + (f"the split(s) {', '.join(found)}: pass --split {found[0]}" if found else "no qrels")
        )
    qrels: dict[str, dict[str, int]] = {}
    for lineno, line in enumerate(qrels_file.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if lineno == 1 and parts[0] == "query-id":
            continue
        try:
            qid, did, score = parts[0], parts[1], int(parts[2])
        except (IndexError, ValueError):
            raise InvalidInputError(
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
            raise InvalidInputError(
                f'{queries_file}:{lineno}: expected {{"_id", "text"}}'
            ) from None
        if qid in qrels and text.strip():
            queries[qid] = text
    if not queries:
        raise InvalidInputError(f"no query in {queries_file} has judgments in {qrels_file}")
    return BeirDataset(root=root, split=split, queries=queries, qrels=qrels)


def split_tag(split: BeirSplit) -> str:
    """What run file names add for a split: nothing for test (BEIR's default), else `.SPLIT`."""
    return "" if split == "test" else f".{split}"


def corpus_collection(corpus: Path, settings: Settings, label: str) -> str:
    """`eval-LABEL-DIGEST`: a collection name fixed by the corpus bytes and the indexing
    settings, so a second evaluation of the same corpus reuses the first one's index."""
    digest = hashlib.sha256(corpus.read_bytes())
    # The embedder's identity, not just its model: int8 vectors need an index of their own.
    embedder = embedder_identity(settings.embedder.model, settings.embedder.backend)
    digest.update(
        f"{embedder}|{settings.ingest.chunk_tokens}|{settings.ingest.chunk_overlap}".encode()
    )
    slug = re.sub(r"\.{2,}", ".", re.sub(r"[^a-zA-Z0-9._-]+", "-", label[:40]))
    return f"eval-{slug}-{digest.hexdigest()[:12]}"


def corpus_titles(corpus: Path) -> dict[str, str]:
    """Document id -> title for every record of a corpus.jsonl (malformed lines left out)."""
    titles = {}
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                titles[str(rec["_id"])] = str(rec.get("title") or "")
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
    return titles


def corpus_texts(corpus: Path, wanted: set[str]) -> dict[str, str]:
    """Document id -> text (title line first) for the `wanted` ids of a corpus.jsonl."""
    texts = {}
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            did = str(rec.get("_id"))
            if did in wanted:
                title, text = rec.get("title") or "", rec.get("text") or ""
                texts[did] = text if not title or text.startswith(title) else f"{title}\n{text}"
    return texts


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
