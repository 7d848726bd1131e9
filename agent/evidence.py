"""How well the passages answer a question, measured without a language model: the sentences
of the passages scored by embedding similarity to the question, with the share of the
question's terms they contain as a tie-break.

The grade node decides from these scores when no trusted model judges, and the extractive
answer is the best of these sentences, each cited. Both work the same with a 135M model as
with a large one, since no model writes anything here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from pydantic import BaseModel

from rearag.core.sanitize import neutralise
from rearag.core.text import passage_sentences, terms
from rearag.core.types import Passage

# Texts -> unit-length vectors, one row per text (the collection's embedder).
Encode = Callable[[list[str]], np.ndarray]

MIN_WORDS = 4  # titles, headings and fragments are not evidence


class Sentence(BaseModel):
    passage: int  # 0-based index into the passages scored
    text: str
    similarity: float  # cosine similarity to the question
    coverage: float  # share of the question's terms the sentence contains

    @property
    def score(self) -> float:
        # Similarity decides; coverage only breaks near-ties.
        return self.similarity + 0.05 * self.coverage


def split_sentences(text: str) -> list[str]:
    """The sentences of `text` with at least MIN_WORDS words, whitespace collapsed and
    neutralised (an extracted answer goes into the history the next turn's prompts quote). A
    chunk may begin or end inside a sentence: a piece starting in lower case and a last piece
    without an end mark are such halves, and are left out."""
    parts = passage_sentences(neutralise(text))
    # Sentences start in upper case (or with a digit, a quote, a bullet); joined lines and
    # split sentences do too, so a piece in lower case is the end of a cut sentence.
    parts = [s for s in parts if s and not s[0].islower()]
    if len(parts) > 1 and not re.search(r"[.!?:;\"')\]]$", parts[-1]):
        parts = parts[:-1]
    # A Markdown heading of four words or more is still a heading, not a statement.
    return [s for s in parts if len(s.split()) >= MIN_WORDS and not s.startswith("#")]


def coverage(question: str, text: str) -> float:
    """The share of the question's terms found in `text` (0 when the question has none)."""
    wanted = terms(question)
    return len(wanted & terms(text)) / len(wanted) if wanted else 0.0


def score_sentences(question: str, passages: Sequence[Passage], encode: Encode) -> list[Sentence]:
    """Every sentence of `passages`, best answer to `question` first."""
    found = [(i, s) for i, p in enumerate(passages) for s in split_sentences(p.text)]
    if not found:
        return []
    vectors = encode([question] + [s for _, s in found])
    similarity = vectors[1:] @ vectors[0]
    scored = [
        Sentence(passage=i, text=s, similarity=float(sim), coverage=coverage(question, s))
        for (i, s), sim in zip(found, similarity, strict=True)
    ]
    return sorted(scored, key=lambda s: s.score, reverse=True)


def best_similarity(topics: Sequence[str], passages: Sequence[Passage], encode: Encode) -> float:
    """The evidence score: the highest cosine similarity between any of `topics` (ways of
    stating the question) and any sentence of `passages`; 0 when they have no sentence."""
    sentences = [s for p in passages for s in split_sentences(p.text)]
    if not sentences or not topics:
        return 0.0
    vectors = encode([*topics, *sentences])
    return float((vectors[len(topics) :] @ vectors[: len(topics)].T).max())
