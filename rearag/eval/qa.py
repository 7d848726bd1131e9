"""Question-answering evaluation: exact match and token F1 with SQuAD's normalisation,
abstention rate and citation validity over a JSONL file of {"question", "answers": [...]}."""

from __future__ import annotations

import collections
import json
import re
import string
import time
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel
from tqdm import tqdm

from rearag.core.errors import InvalidInputError, NotFoundError
from rearag.core.types import CITATION, Answer


class Asker(Protocol):
    """What the evaluation needs of an agent (`RAGAgent` is one)."""

    def ask(self, question: str) -> Answer: ...


class QAItem(BaseModel):
    question: str
    answers: list[str]


class QAResult(BaseModel):
    questions: int
    exact_match: float
    f1: float
    abstention_rate: float
    citation_validity: float  # valid citations / all citations the answers wrote
    seconds_per_question: float


def normalize(text: str) -> str:
    """SQuAD: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, truth: str) -> float:
    pred, gold = normalize(prediction).split(), normalize(truth).split()
    common = collections.Counter(pred) & collections.Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def load_items(path: Path) -> list[QAItem]:
    if not path.is_file():
        raise NotFoundError(f'{path} not found: pass a JSONL file of {{"question", "answers"}}')
    items = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(QAItem.model_validate(json.loads(line)))
        except ValueError:
            raise InvalidInputError(
                f'{path}:{lineno}: expected {{"question": "...", "answers": ["..."]}}'
            ) from None
    if not items:
        raise InvalidInputError(f"{path} holds no questions")
    return items


def evaluate_qa(agent: Asker, items: list[QAItem], *, progress: bool = True) -> QAResult:
    em = f1 = abstained = valid = written = 0.0
    start = time.perf_counter()
    for item in tqdm(items, desc="questions", unit="q", disable=not progress):
        answer = agent.ask(item.question)
        text = CITATION.sub(" ", answer.answer)  # citation markers are not part of the answer
        em += max(float(normalize(text) == normalize(a)) for a in item.answers)
        f1 += max(f1_score(text, a) for a in item.answers)
        abstained += answer.abstained
        cited = len(CITATION.findall(answer.answer))
        valid += cited
        written += cited + answer.invalid_citations
    n = len(items)
    return QAResult(
        questions=n,
        exact_match=em / n,
        f1=f1 / n,
        abstention_rate=abstained / n,
        citation_validity=valid / written if written else 1.0,
        seconds_per_question=(time.perf_counter() - start) / n,
    )
