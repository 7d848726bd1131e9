"""Whether text is grounded in passages: the score check of the grader (how many of the
question's terms the passages contain) and the citation check of the generator (which [n] in
an answer name a passage it was shown)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from rearag.core.types import CITATION, Passage

STOP_WORDS = frozenset(
    {
        "the",
        "and",
        "for",
        "what",
        "which",
        "who",
        "how",
        "does",
        "with",
        "that",
        "this",
        "are",
        "was",
        "were",
        "from",
        "about",
        "into",
        "can",
        "why",
        "when",
        "where",
        "did",
    }
)


def terms(text: str) -> set[str]:
    """The words of `text` a match means something for: three characters or more, no stop
    words, lower case."""
    return set(re.findall(r"[a-z0-9]{3,}", text.lower())) - STOP_WORDS


def overlap(question: str, passages: Sequence[Passage]) -> float:
    """The share of the question's terms found in the passages (0 when it has none)."""
    wanted = terms(question)
    if not wanted:
        return 0.0
    text = " ".join(p.text.lower() for p in passages)
    return sum(t in text for t in wanted) / len(wanted)


def cited(text: str, shown: int) -> list[int]:
    """The passage numbers `text` cites that exist among the `shown` passages, ascending."""
    return sorted({n for n in map(int, CITATION.findall(text)) if 1 <= n <= shown})


def drop_invalid_citations(text: str, shown: int) -> tuple[str, int]:
    """`text` without the citations that name no shown passage, and how many there were."""
    invalid = 0

    def check(match: re.Match[str]) -> str:
        nonlocal invalid
        if 1 <= int(match.group(1)) <= shown:
            return match.group(0)
        invalid += 1
        return ""

    # A removed citation leaves a double space behind.
    return re.sub(r"[ \t]+", " ", CITATION.sub(check, text)).strip(), invalid
