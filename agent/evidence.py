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

from rearag.agent.grounding import terms
from rearag.core.types import Passage

# Texts -> unit-length vectors, one row per text (the collection's embedder).
Encode = Callable[[list[str]], np.ndarray]

# A sentence ends at . ! ? (not inside "e.g." or "3.5": the next word must start a sentence)
# or at a line break; passages from files keep their title and headings as separate lines.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")
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
    """The sentences of `text` with at least MIN_WORDS words, whitespace collapsed."""
    parts = (" ".join(s.split()) for s in _SENTENCE_END.split(text))
    return [s for s in parts if len(s.split()) >= MIN_WORDS]


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
