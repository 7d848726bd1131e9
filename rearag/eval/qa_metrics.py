"""The QA evaluation's metrics on one answer, from text alone (no files, no models): SQuAD's
exact match and token F1, whether the answer holds a gold answer or cites its source, and its
(sentence, citation) pairs that the cited passage supports. rearag/eval/qa.py defines each
metric for the report and runs them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rearag.core.text import (
    ANSWER_SENTENCE,
    CITATION,
    EXTRACTED_QUOTE,
    normalize,
    supports_content_words,
)
from rearag.core.types import Answer


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize(prediction) == normalize(truth))


def f1_score(prediction: str, truth: str) -> float:
    pred, gold = normalize(prediction).split(), normalize(truth).split()
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def answer_text(answer: Answer) -> str:
    """What is scored: the answer without its citation markers."""
    return CITATION.sub(" ", answer.answer)


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """Whether normalised `text` holds a normalised gold answer, on word boundaries."""
    haystack = f" {normalize(text)} "
    return any(f" {gold} " in haystack for gold in map(normalize, answers) if gold)


def is_attributed(answer: Answer, answers: Sequence[str], gold: str | None) -> bool:
    """A citation is the `gold` paragraph (a corpus `_id`), or a passage holding a gold answer."""
    return any(
        (gold is not None and c.metadata.get("doc_id") == gold) or contains_answer(c.text, answers)
        for c in answer.citations
    )


def citation_pairs(answer: Answer) -> tuple[int, int]:
    """(supported, all) (sentence, cited number) pairs of an answer."""
    passages = {c.number: c.text for c in answer.citations}
    supported = total = 0
    splitter = EXTRACTED_QUOTE if answer.mode == "extractive" else ANSWER_SENTENCE
    for sentence in splitter.split(answer.answer):
        for number in dict.fromkeys(int(n) for n in CITATION.findall(sentence)):
            total += 1
            supported += number in passages and supports_content_words(passages[number], sentence)
    return supported, total
