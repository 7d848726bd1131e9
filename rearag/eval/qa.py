"""Question-answering evaluation in the manner of SQuAD 2.0: answer quality, attribution,
citation precision and abstention of the agent's answers.

A dataset is a JSONL file of `{"id", "question", "answers": [...], "gold"}` asked against a
given collection, or a folder holding `qa.jsonl` and either `corpus.jsonl` (BEIR layout) or a
`docs/` folder of files (ingested as `rearag ingest` reads them: a documentation set), ingested
into a collection of its own (fingerprinted, so a second run embeds nothing). `gold` is the
corpus `_id` of the paragraph the answers come from, or the file's path under `docs/`.
Questions are of three kinds:

- `answerable`: `answers` holds the gold answers. Exact match and token F1 (SQuAD
  normalisation, citation markers removed) average over all of them, an abstention being the
  empty prediction (0, as in SQuAD 2.0); "contains" (the answer holds a gold answer, word for
  word) and "attribution" (a citation is the gold paragraph, or a passage holding a gold
  answer) average over those answered.
- `unanswerable`: `answers` is empty (SQuAD 2.0's adversarial questions): the right response
  is to abstain.
- `cross-article`: an answerable question asked against the corpus without its article (the
  `title` of its gold paragraph); folder datasets only. The right response is to abstain.

Citation precision, over the answered questions of every kind: of all (sentence, cited number)
pairs in the answers, the share whose cited passage supports the sentence. A passage supports a
sentence when at least half of the sentence's content words (normalised tokens of three or more
characters, not in rearag.core.text's `METRIC_STOP_WORDS`, citation markers removed) occur among
the passage's normalised tokens; a sentence without content words claims nothing and is
supported. A number with no entry in `answer.citations` is unsupported. Answers without
citations add no pair.

The metrics of one answer are in rearag/eval/qa_metrics.py; this module loads the questions,
asks them, scores each answer into a row and aggregates the rows. Every question asked becomes
a row of a JSONL file, written as the run goes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter
from typing import Literal, Protocol, get_args

from pydantic import BaseModel
from tqdm import tqdm

from rearag.core.config import Settings
from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.core.types import Answer
from rearag.eval.beir import corpus_collection, corpus_titles
from rearag.eval.qa_metrics import (
    answer_text,
    citation_pairs,
    contains_answer,
    exact_match,
    f1_score,
    is_attributed,
)
from rearag.eval.retrieval import ingested_store
from rearag.tools.embedder import embedder_identity
from rearag.tools.ingest import ingest
from rearag.tools.loaders import source_name
from rearag.tools.store import Store

Kind = Literal["answerable", "unanswerable", "cross-article"]


class Asker(Protocol):
    """What the evaluation needs of an agent (`RAGAgent` is one)."""

    def ask(self, question: str) -> Answer: ...


# Collection name (None: the configured default) -> an agent answering from that collection.
AgentFactory = Callable[[str | None], Asker]


class QAItem(BaseModel):
    id: str = ""
    question: str
    answers: list[str]  # empty: unanswerable
    gold: str | None = None  # corpus `_id` of the paragraph the answers come from

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


class Question(BaseModel):
    """An item as asked: its kind and the collection it is asked against (None: the default)."""

    item: QAItem
    kind: Kind
    collection: str | None = None


class CitedPassage(BaseModel):
    number: int
    id: str
    doc_id: str | None = None


class QARow(BaseModel):
    """One question asked, scored. Answer-quality fields are None where they do not apply:
    EM/F1 for answerable questions only, contains/attributed for answered answerable ones."""

    id: str
    kind: Kind
    collection: str | None
    question: str
    answers: list[str]
    gold: str | None
    answer: str
    mode: str
    abstained: bool
    citations: list[CitedPassage]
    exact_match: float | None = None
    f1: float | None = None
    contains: bool | None = None
    attributed: bool | None = None
    supported_pairs: int = 0
    citation_pairs: int = 0
    invalid_citations: int = 0
    seconds: float
    errors: list[str] = []


class KindReport(BaseModel):
    questions: int
    answered: int
    abstained: int
    abstention: float  # abstained / questions
    exact_match: float | None = None  # answerable: over all of them, an abstention scores 0
    f1: float | None = None
    contains_answer: float | None = None  # answerable: over the answered ones
    attribution: float | None = None


class QAReport(BaseModel):
    dataset: str
    questions: int
    answered: int
    abstained: int
    kinds: dict[str, KindReport]  # "answerable", "unanswerable", "cross-article" (when asked)
    citation_precision: float | None  # None: no answer cited anything
    citation_pairs: int
    supported_pairs: int
    invalid_citations: int
    modes: dict[str, int]  # answer.mode -> questions
    seconds_p50: float
    seconds_p95: float
    seconds_mean: float
    collections: list[str]
    rows_file: str


# Scoring --------------------------------------------------------------------------------------


def score(question: Question, answer: Answer, seconds: float) -> QARow:
    item = question.item
    row = QARow(
        id=item.id,
        kind=question.kind,
        collection=question.collection,
        question=item.question,
        answers=item.answers,
        gold=item.gold,
        answer=answer.answer,
        mode=answer.mode,
        abstained=answer.abstained,
        citations=[
            CitedPassage(number=c.number, id=c.id, doc_id=c.metadata.get("doc_id"))
            for c in answer.citations
        ],
        invalid_citations=answer.invalid_citations,
        seconds=seconds,
        errors=answer.errors,
    )
    if not answer.abstained:
        row.supported_pairs, row.citation_pairs = citation_pairs(answer)
    if question.kind == "answerable":
        predicted = "" if answer.abstained else answer_text(answer)  # SQuAD 2.0: no answer
        row.exact_match = max(exact_match(predicted, a) for a in item.answers)
        row.f1 = max(f1_score(predicted, a) for a in item.answers)
        if not answer.abstained:
            row.contains = contains_answer(predicted, item.answers)
            row.attributed = is_attributed(answer, item.answers, item.gold)
    return row


# Aggregation ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, interpolating linearly between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def kind_report(rows: Sequence[QARow]) -> KindReport:
    answered = [r for r in rows if not r.abstained]
    report = KindReport(
        questions=len(rows),
        answered=len(answered),
        abstained=len(rows) - len(answered),
        abstention=(len(rows) - len(answered)) / len(rows),
    )
    if rows[0].kind == "answerable":
        report.exact_match = _mean([r.exact_match or 0.0 for r in rows])
        report.f1 = _mean([r.f1 or 0.0 for r in rows])
        report.contains_answer = _mean([float(bool(r.contains)) for r in answered])
        report.attribution = _mean([float(bool(r.attributed)) for r in answered])
    return report


def summarize(
    rows: Sequence[QARow], *, dataset: str, collections: list[str], rows_file: Path
) -> QAReport:
    by_kind: dict[str, list[QARow]] = {}
    for row in rows:
        by_kind.setdefault(row.kind, []).append(row)
    seconds = [r.seconds for r in rows]
    supported, pairs = sum(r.supported_pairs for r in rows), sum(r.citation_pairs for r in rows)
    answered = sum(not r.abstained for r in rows)
    return QAReport(
        dataset=dataset,
        questions=len(rows),
        answered=answered,
        abstained=len(rows) - answered,
        kinds={kind: kind_report(by_kind[kind]) for kind in get_args(Kind) if kind in by_kind},
        citation_precision=supported / pairs if pairs else None,
        citation_pairs=pairs,
        supported_pairs=supported,
        invalid_citations=sum(r.invalid_citations for r in rows),
        modes=dict(sorted(Counter(r.mode for r in rows).items())),
        seconds_p50=percentile(seconds, 50),
        seconds_p95=percentile(seconds, 95),
        seconds_mean=_mean(seconds) or 0.0,
        collections=collections,
        rows_file=str(rows_file),
    )


# Loading and selecting ------------------------------------------------------------------------


def load_items(path: Path) -> list[QAItem]:
    if not path.is_file():
        raise NotFoundError(
            f'{path} not found: pass a JSONL file of {{"question", "answers"}}, or a folder '
            "holding corpus.jsonl and qa.jsonl"
        )
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            item = QAItem.model_validate(rec)
        except ValueError:
            raise InvalidInputError(
                f'{path}:{lineno}: expected {{"question": "...", "answers": ["..."]}}'
            ) from None
        if rec.get("answerable") not in (None, item.answerable):
            raise InvalidInputError(
                f'{path}:{lineno}: "answerable" is {rec["answerable"]} but "answers" is '
                f"{'not ' if item.answers else ''}empty"
            )
        items.append(item)
    if not items:
        raise InvalidInputError(f"{path} holds no questions")
    return items


def select_items(
    items: list[QAItem], *, limit: int | None = None, sample: int | None = None, seed: int = 0
) -> list[QAItem]:
    """`sample` items drawn at random (seeded, kept in file order), then the first `limit`."""
    for option, value in (("--limit", limit), ("--sample", sample)):
        if value is not None and value < 1:
            raise InvalidInputError(f"{option} must be at least 1")
    if sample is not None and sample < len(items):
        picked = sorted(random.Random(seed).sample(range(len(items)), sample))
        items = [items[i] for i in picked]
    return items[:limit]


def _kind(item: QAItem) -> Kind:
    return "answerable" if item.answerable else "unanswerable"


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "_", text).strip("_") or "untitled"


def corpus_without(corpus: Path, article: str, settings: Settings) -> Path | None:
    """A copy of `corpus` without the documents titled `article`, under HOME/eval (None when
    no other document is left)."""
    kept = []
    for line in corpus.read_text(encoding="utf-8").splitlines():
        try:
            title = str(json.loads(line).get("title") or "")
        except (json.JSONDecodeError, AttributeError):
            continue
        if title != article:
            kept.append(line + "\n")
    if not kept:
        return None
    path = settings.home / "eval" / f"{corpus.parent.resolve().name}-without-{_slug(article)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(kept), encoding="utf-8")
    return path


def cross_article_questions(
    items: list[QAItem], corpus: Path, settings: Settings, *, progress: bool
) -> tuple[list[Question], list[str]]:
    """Each article's answerable questions, asked against the corpus without that article."""
    titles = corpus_titles(corpus)
    by_article: dict[str, list[QAItem]] = {}
    for item in items:
        if item.answerable and item.gold in titles:
            by_article.setdefault(titles[item.gold], []).append(item)
    questions, names = [], []
    for article, asked in by_article.items():
        without = corpus_without(corpus, article, settings)
        if without is None:
            continue
        label = f"{corpus.parent.resolve().name[:20]}-no-{_slug(article)}"
        name = ingested_store(
            without, settings, corpus_collection(without, settings, label), progress=progress
        ).name
        names.append(name)
        questions += [Question(item=i, kind="cross-article", collection=name) for i in asked]
    return questions, names


def plan_questions(
    dataset: Path,
    settings: Settings,
    *,
    collection: str | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    cross_article: bool = True,
    progress: bool = True,
) -> tuple[list[Question], list[str]]:
    """The questions to ask and the collections they are asked against (a folder's corpus is
    ingested here)."""
    if not dataset.is_dir():
        items = select_items(load_items(dataset), limit=limit, sample=sample, seed=seed)
        name = collection or settings.collection
        return [Question(item=i, kind=_kind(i), collection=collection) for i in items], [name]
    if collection:
        raise InvalidInputError(
            f"{dataset} is a folder, evaluated in a collection of its own: leave out --collection"
        )
    if (dataset / "docs").is_dir() and (dataset / "qa.jsonl").is_file():
        return _docs_questions(
            dataset, settings, limit=limit, sample=sample, seed=seed, progress=progress
        )
    corpus, qa = dataset / "corpus.jsonl", dataset / "qa.jsonl"
    for f in (corpus, qa):
        if not f.is_file():
            raise NotFoundError(
                f"{f} not found: a QA dataset folder holds qa.jsonl and corpus.jsonl or docs/"
            )
    items = select_items(load_items(qa), limit=limit, sample=sample, seed=seed)
    label = dataset.resolve().name
    main = ingested_store(
        corpus, settings, corpus_collection(corpus, settings, label), progress=progress
    ).name
    questions = [Question(item=i, kind=_kind(i), collection=main) for i in items]
    names = [main]
    if cross_article:
        more, others = cross_article_questions(items, corpus, settings, progress=progress)
        questions += more
        names += others
    return questions, names


def _docs_questions(
    dataset: Path,
    settings: Settings,
    *,
    limit: int | None,
    sample: int | None,
    seed: int,
    progress: bool,
) -> tuple[list[Question], list[str]]:
    """The questions of a documentation set: its `docs/` folder ingested as a user's folder
    (files it cannot read are left out, as `rearag ingest` does), each `gold` made the stored
    document id of its file."""
    docs = dataset / "docs"
    items = select_items(load_items(dataset / "qa.jsonl"), limit=limit, sample=sample, seed=seed)
    digest = hashlib.sha256()
    for path in sorted(p for p in docs.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(docs)}\0".encode() + path.read_bytes())
    embedder = embedder_identity(settings.embedder.model, settings.embedder.backend)
    digest.update(
        f"{embedder}|{settings.ingest.chunk_tokens}|{settings.ingest.chunk_overlap}".encode()
    )
    name = f"eval-{_slug(dataset.resolve().name)[:40]}-{digest.hexdigest()[:12]}"
    ingest([docs], Store(settings, name, create=True), progress=progress)
    for item in items:
        if item.gold is not None:
            item.gold = source_name((docs / item.gold).resolve())
    return [Question(item=i, kind=_kind(i), collection=name) for i in items], [name]


# Running --------------------------------------------------------------------------------------


def default_rows_file(settings: Settings, collection: str) -> Path:
    return settings.home / "runs" / f"qa-{collection}-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"


def check_rows_file(path: Path) -> None:
    """InvalidInputError unless `path` can be written as the per-question rows file."""
    if path.is_dir():
        raise InvalidInputError(
            f"--rows {path} is a folder: give a file name, e.g. {path / 'qa.jsonl'}"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError as exc:
        raise InvalidInputError(f"cannot write the rows file {path}: {exc.strerror}") from None


def ask_all(
    questions: Sequence[Question], make_agent: AgentFactory, rows_file: Path, *, progress: bool
) -> list[QARow]:
    """Ask every question (one agent per collection), writing each scored row as it comes."""
    agents: dict[str | None, Asker] = {}
    rows = []
    rows_file.parent.mkdir(parents=True, exist_ok=True)
    with rows_file.open("w", encoding="utf-8") as fh:
        for question in tqdm(questions, desc="questions", unit="q", disable=not progress):
            if question.collection not in agents:
                agent = make_agent(question.collection)
                if not agents:
                    # Loading the models is not a question's time: warm up once, untimed.
                    agent.ask(question.item.question)
                agents[question.collection] = agent
            start = perf_counter()
            answer = agents[question.collection].ask(question.item.question)
            row = score(question, answer, perf_counter() - start)
            fh.write(row.model_dump_json() + "\n")
            fh.flush()
            rows.append(row)
    return rows


def evaluate_qa(
    dataset: Path,
    settings: Settings,
    make_agent: AgentFactory,
    *,
    collection: str | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    cross_article: bool = True,
    rows_file: Path | None = None,
    progress: bool = True,
) -> QAReport:
    """Ask the dataset's questions (see the module's docstring) and report on the answers.

    `dataset` is a JSONL file, asked against `collection` (None: the configured one), or a
    folder with corpus.jsonl and qa.jsonl; `limit`, `sample` and `seed` select the items
    (`select_items`); `cross_article` adds the cross-article questions of a folder."""
    if rows_file is not None:
        check_rows_file(rows_file)  # before any ingesting: a bad path must fail at once
    questions, names = plan_questions(
        dataset,
        settings,
        collection=collection,
        limit=limit,
        sample=sample,
        seed=seed,
        cross_article=cross_article,
        progress=progress,
    )
    rows_file = rows_file or default_rows_file(settings, names[0])
    rows = ask_all(questions, make_agent, rows_file, progress=progress)
    return summarize(rows, dataset=str(dataset), collections=names, rows_file=rows_file)
