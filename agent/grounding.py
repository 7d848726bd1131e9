"""Whether an answer is grounded in the passages it was shown, checked sentence by sentence:
a citation counts only where the cited passage contains what the sentence adds to the question.
Echoes of the prompt, repeated sentences and unsupported statements are dropped; a supported
sentence the model forgot to cite gets the citation of the passage that supports it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from rearag.agent.prompts import GENERATE_INSTRUCTION, GENERATE_SYSTEM
from rearag.core.types import ANSWER_SENTENCE, CITATION, Passage

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


def cited(text: str, shown: int) -> list[int]:
    """The passage numbers `text` cites that exist among the `shown` passages, ascending."""
    return sorted({n for n in map(int, CITATION.findall(text)) if 1 <= n <= shown})


# Words of our own prompt: a sentence made of these and the question's words is an echo.
_PROMPT_TERMS = frozenset(
    set(re.findall(r"[a-z0-9]{3,}", f"{GENERATE_SYSTEM} {GENERATE_INSTRUCTION}".lower()))
    | {"question", "passage", "passages", "answer", "cite", "citation", "citations"}
)


def _stem(term: str) -> str:
    # Crude, on purpose: "originated" and "originate", "Normans" and "Norman" match.
    return term[:6]


def new_terms(sentence: str, question: str) -> set[str]:
    """What a sentence adds: its terms that are neither in the question nor in our prompt."""
    added = terms(CITATION.sub(" ", sentence)) - terms(question) - _PROMPT_TERMS
    return {_stem(t) for t in added}


def supports(passage: str, sentence: str, question: str, min_support: float) -> bool:
    """Whether `passage` contains at least `min_support` of what `sentence` adds to the
    question. A sentence that adds nothing (an echo of the question or the prompt) is not
    supported by anything."""
    added = new_terms(sentence, question)
    if not added:
        return False
    found = {_stem(t) for t in terms(passage)}
    return len(added & found) / len(added) >= min_support


class Checked(NamedTuple):
    text: str  # the kept sentences, each with its supported citations
    dropped_citations: int  # citations removed: no such passage, or not supported
    dropped_sentences: int  # echoes, repeats and unsupported sentences removed


def check_answer(
    text: str, passages: Sequence[Passage], question: str, min_support: float
) -> Checked:
    """`text` reduced to its grounded sentences (see the module's docstring)."""
    kept: list[str] = []
    seen: set[str] = set()
    dropped_citations = dropped_sentences = 0
    for sentence in (s.strip() for s in ANSWER_SENTENCE.split(text)):
        if not sentence:
            continue
        key = " ".join(sorted(terms(CITATION.sub(" ", sentence))))
        numbers = [int(n) for n in CITATION.findall(sentence)]
        good = [
            n
            for n in dict.fromkeys(numbers)
            if 1 <= n <= len(passages)
            and supports(passages[n - 1].text, sentence, question, min_support)
        ]
        dropped_citations += len(numbers) - len([n for n in numbers if n in good])
        if not numbers:  # uncited: keep it if a passage supports it, citing that passage
            good = [
                i
                for i, p in enumerate(passages, start=1)
                if supports(p.text, sentence, question, min_support)
            ][:1]
        if not good or key in seen:
            dropped_sentences += 1
            continue
        seen.add(key)
        body = re.sub(r"[ \t]+", " ", CITATION.sub("", sentence)).strip()
        end = body[-1] if body[-1:] in ".!?" else ""
        body = body.rstrip(".!? ")
        kept.append(f"{body} {''.join(f'[{n}]' for n in good)}{end or '.'}")
    return Checked(" ".join(kept), dropped_citations, dropped_sentences)
