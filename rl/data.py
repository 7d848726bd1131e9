"""Training data for the reranker policy (REARANK's recipe): first-stage retrieval for every
judged query, then many windows per query, each a random subset of `window` candidates from
the top `depth` with their relevance labels, kept in first-stage order or shuffled.

Shuffled windows are what make relevance learnable: in first-stage order "keep the order" is
already good and any swap risks a loss, so a policy's safest answer is the identity; shuffled,
no position can be right more often than chance and only reading the passages pays. Each row
also keeps its passages' first-stage ranks (`ranks`), so the same held-out windows can be
evaluated in first-stage order too.

A row's `prompt` is the policy's own chat prompt (`Policy.messages`, the builder the reranker
uses at inference); `labels` are what the rewards read. Queries are assigned to train or test
by a hash of their id, so the splits never share a query and do not depend on file order.
Windows with fewer than `min_relevant` relevant passages are left out: every ranking of a window
without a relevant passage earns the same reward, so it teaches nothing. Windows already in ideal
order stay (in both splits): dropping them would bias the data against the first-stage order.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError
from tqdm import tqdm

from rearag.core.config import SearchMode, Settings
from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.policies.registry import get_policy

if TYPE_CHECKING:
    from rearag.eval.beir import BeirSplit

Split = Literal["train", "test"]
SPLITS: tuple[Split, ...] = ("train", "test")
MANIFEST = "manifest.json"


class SplitStats(BaseModel):
    rows: int
    queries: int
    mean_relevant: float  # relevant passages per window


class DataManifest(BaseModel):
    source: str
    policy: str
    first_stage: str
    depth: int
    window: int
    samples_per_query: int
    test_fraction: float
    seed: int
    min_relevant: int
    max_passage_chars: int
    beir_split: str = "test"  # the judged split (qrels/SPLIT.tsv) the queries came from
    shuffled: bool = False
    splits: dict[str, SplitStats]
    fingerprint: str
    seconds: float


def split_of(query_id: str, test_fraction: float, seed: int) -> Split:
    """train or test, fixed by the query id and the seed alone."""
    digest = hashlib.sha256(f"{seed}:{query_id}".encode()).digest()
    return "test" if int.from_bytes(digest[:8], "big") / 2**64 < test_fraction else "train"


def sample_windows(
    labels: list[int], window: int, samples: int, min_relevant: int, rng: random.Random
) -> list[list[int]]:
    """Up to `samples` distinct windows (sorted positions into the ranking) with at least
    `min_relevant` relevant passages."""
    n = len(labels)
    size = min(window, n)
    found: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for _ in range(samples * 20):  # bounded: few distinct windows may exist
        if len(found) == samples:
            break
        picked = tuple(sorted(rng.sample(range(n), size)))
        if picked in seen:
            continue
        seen.add(picked)
        window_labels = [labels[i] for i in picked]
        if sum(1 for g in window_labels if g > 0) >= min_relevant:
            found.append(list(picked))
    return found


def build_data(
    root: Path,
    out: Path,
    settings: Settings,
    *,
    policy: str = "rearag-reasoning",
    first_stage: SearchMode | str = SearchMode.hybrid,
    depth: int = 100,
    window: int = 20,
    samples_per_query: int = 50,
    splits: tuple[Split, ...] = SPLITS,
    test_fraction: float = 0.33,
    seed: int = 0,
    min_relevant: int = 1,
    max_passage_chars: int | None = None,
    max_queries: int | None = None,
    beir_split: BeirSplit = "test",
    shuffle: bool = False,
    progress: bool = True,
) -> DataManifest:
    """Write `out/train` and `out/test` (Hugging Face datasets) and `out/manifest.json`."""
    import datasets

    # Here, not at the top: a GPU machine that trains on data built elsewhere needs neither
    # Chroma nor BM25, only the training half of this module.
    from rearag.eval.beir import corpus_texts, load_beir
    from rearag.eval.retrieval import dataset_retriever, doc_ranking

    datasets.disable_progress_bars()  # one bar per split save is noise; ours show progress
    the_policy = get_policy(policy)
    if the_policy.kind != "generate":
        raise InvalidInputError(f"policy {policy} does not generate text, so it cannot be trained")
    first_stage = SearchMode.of(first_stage)
    if not splits or not set(splits) <= set(SPLITS):
        raise InvalidInputError(f"--part must be train or test, not {', '.join(splits) or 'none'}")
    if not 2 <= window <= depth:
        raise InvalidInputError("--window must be at least 2 and at most --depth")
    if (
        samples_per_query < 1
        or not 0 < test_fraction < 1
        or min_relevant < 0
        or (max_queries is not None and max_queries < 1)
    ):
        raise InvalidInputError(
            "--samples-per-query and --queries must be ≥ 1, --test-fraction in (0, 1), "
            "--min-relevant ≥ 0"
        )
    if out.exists() and any(out.iterdir()):
        raise InvalidInputError(f"{out} is not empty: choose another --out, or delete it first")
    max_chars = max_passage_chars or settings.reranker.max_passage_chars
    began = time.perf_counter()
    dataset = load_beir(root, beir_split)
    queries = [
        (qid, text)
        for qid, text in dataset.queries.items()
        if split_of(qid, test_fraction, seed) in splits
    ][:max_queries]
    if not queries:
        raise InvalidInputError("no judged query falls in the requested part: check --part")
    retriever = dataset_retriever(dataset, settings, progress=progress)
    rng = random.Random(seed)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in splits}
    rankings: dict[str, list[str]] = {}
    for qid, text in tqdm(queries, desc="first stage", unit="query", disable=not progress):
        rankings[qid] = doc_ranking(retriever, text, first_stage, depth)
    texts = corpus_texts(dataset.corpus, {d for docs in rankings.values() for d in docs})
    for qid, text in queries:
        ranking = [d for d in rankings[qid] if d in texts]
        labels = [dataset.qrels[qid].get(d, 0) for d in ranking]
        if len(ranking) < 2:
            continue
        for picked in sample_windows(labels, window, samples_per_query, min_relevant, rng):
            if shuffle:
                rng.shuffle(picked)
            passages = [texts[ranking[i]] for i in picked]
            rows[split_of(qid, test_fraction, seed)].append(
                {
                    "query_id": qid,
                    "query": text,
                    "doc_ids": [ranking[i] for i in picked],
                    "passages": passages,
                    "labels": [labels[i] for i in picked],
                    "ranks": [i + 1 for i in picked],  # 1-based first-stage ranks
                    "prompt": the_policy.messages(text, passages, max_chars),
                }
            )

    if not any(rows.values()):
        raise InvalidInputError(
            "no window can be scored: no query has enough relevant passages in the first "
            "stage's top --depth (lower --min-relevant or raise --depth)"
        )
    staging = out.with_name(f".{out.name}.{time.time_ns()}")
    staging.mkdir(parents=True)
    digest = hashlib.sha256(f"{policy}|{max_chars}|{beir_split}|{shuffle}".encode())
    stats = {}
    for split, split_rows in rows.items():
        datasets.Dataset.from_list(split_rows).save_to_disk(str(staging / split))
        for row in split_rows:
            digest.update(json.dumps([row["query_id"], row["doc_ids"], row["labels"]]).encode())
        relevant = [sum(1 for g in r["labels"] if g > 0) for r in split_rows]
        stats[split] = SplitStats(
            rows=len(split_rows),
            queries=len({r["query_id"] for r in split_rows}),
            mean_relevant=sum(relevant) / max(1, len(relevant)),
        )
    manifest = DataManifest(
        source=str(root.resolve()),
        policy=policy,
        first_stage=first_stage,
        depth=depth,
        window=window,
        samples_per_query=samples_per_query,
        test_fraction=test_fraction,
        seed=seed,
        min_relevant=min_relevant,
        max_passage_chars=max_chars,
        beir_split=beir_split,
        shuffled=shuffle,
        splits=stats,
        fingerprint=digest.hexdigest()[:16],
        seconds=time.perf_counter() - began,
    )
    (staging / MANIFEST).write_text(manifest.model_dump_json(indent=2))
    if out.exists():
        out.rmdir()  # empty, checked above
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out)
    return manifest


def load_split(path: Path, split: Split | None = None) -> tuple[Any, DataManifest]:
    """(dataset, manifest) of one split. `path` is the data folder (then `split` is needed)
    or the split's own folder (`DIR/train`)."""
    from datasets import load_from_disk

    if (path / MANIFEST).is_file():
        root, name = path, split or "train"
    else:
        root, name = path.parent, path.name
    if not (root / MANIFEST).is_file():
        raise NotFoundError(
            f"{path} is not training data: build it with `rearag train build-data` "
            f"(no {MANIFEST} found)"
        )
    try:
        manifest = DataManifest.model_validate_json((root / MANIFEST).read_text())
    except ValidationError:
        raise InvalidInputError(
            f"{root / MANIFEST} is damaged: rebuild the data with `rearag train build-data`"
        ) from None
    if not (root / name / "dataset_info.json").is_file():
        raise NotFoundError(
            f"{root} has no {name} split (it holds {', '.join(manifest.splits)}): rebuild "
            f"it with --part {name}"
        )
    return load_from_disk(str(root / name)), manifest


def held_out_queries(data: Path, root: Path, beir_split: BeirSplit) -> set[str]:
    """The judged queries of `root` that the training data at `data` kept out of training:
    every query of another dataset or split, and this one's test part."""
    from rearag.eval.beir import load_beir

    folder = data.parent if data.name in SPLITS else data
    try:
        manifest = DataManifest.model_validate_json((folder / MANIFEST).read_text())
    except (OSError, ValidationError):
        raise NotFoundError(
            f"{data} is not training data: give the folder `rearag train build-data` wrote"
        ) from None
    queries = load_beir(root, beir_split).queries
    if Path(manifest.source) != root.resolve() or manifest.beir_split != beir_split:
        return set(queries)
    return {q for q in queries if split_of(q, manifest.test_fraction, manifest.seed) == "test"}


def data_paths(data: Path | list[Path]) -> list[Path]:
    return [data] if isinstance(data, Path) else list(data)


def load_train(paths: list[Path]) -> tuple[Any, DataManifest]:
    """The train splits of one or more data folders as one dataset, and the manifest of the
    first (its `splits` summed, its `source` and `fingerprint` joined). The folders must share
    the policy: a row's prompt is that policy's."""
    from datasets import concatenate_datasets

    if not paths:
        raise InvalidInputError("give at least one --data folder")
    loaded = [load_split(p, "train") for p in paths]
    manifests = [m for _, m in loaded]
    policies = {m.policy for m in manifests}
    if len(policies) > 1:
        raise InvalidInputError(
            f"the --data folders were built for different policies ({', '.join(sorted(policies))})"
            ": rebuild them with one --policy"
        )
    columns = ["query_id", "query", "passages", "labels", "prompt"]
    dataset = concatenate_datasets([d.select_columns(columns) for d, _ in loaded])
    first = manifests[0]
    merged = first.model_copy(
        update={
            "source": " + ".join(m.source for m in manifests),
            "fingerprint": "+".join(m.fingerprint for m in manifests),
            "splits": {
                "train": SplitStats(
                    rows=len(dataset),
                    queries=sum(m.splits["train"].queries for m in manifests),
                    mean_relevant=sum(
                        m.splits["train"].mean_relevant * m.splits["train"].rows for m in manifests
                    )
                    / max(1, len(dataset)),
                )
            },
        }
    )
    return dataset, merged
