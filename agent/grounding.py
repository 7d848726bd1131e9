"""Whether an answer is grounded in the passages it was shown, checked sentence by sentence:
a citation counts only where the cited passage contains what the sentence adds to the question.
Echoes of the prompt, repeated sentences and unsupported statements are dropped, and so is
everything from where a draft starts repeating a system prompt; a supported sentence the model
forgot to cite gets the citation of the passage that supports it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from rearag.agent.prompts import GENERATE_INSTRUCTION, GENERATE_SYSTEM, leaks_system_prompt
from rearag.core.text import ANSWER_SENTENCE, CITATION, supports_added_terms, terms
from rearag.core.types import Passage


def cited(text: str, n_passages: int) -> list[int]:
    """The passage numbers `text` cites that exist among the `n_passages` shown, ascending."""
    return sorted({n for n in map(int, CITATION.findall(text)) if 1 <= n <= n_passages})


# Words of our own prompt: a sentence made of these and the question's words is an echo.
_PROMPT_TERMS = frozenset(
    terms(f"{GENERATE_SYSTEM} {GENERATE_INSTRUCTION}")
    | {"question", "passage", "passages", "answer", "cite", "citation", "citations"}
)


def supports(passage: str, sentence: str, question: str, min_support: float) -> bool:
    """Whether `passage` contains at least `min_support` of what `sentence` adds to the
    question and to our prompt (`supports_added_terms`)."""
    return supports_added_terms(passage, sentence, question, min_support, _PROMPT_TERMS)


class Checked(NamedTuple):
    text: str  # the kept sentences, each with its supported citations
    dropped_citations: int  # citations removed: no such passage, or not supported
    dropped_sentences: int  # echoes, repeats and unsupported sentences removed
    leaked: bool  # the draft repeated a system prompt: that sentence and the rest withheld


class Grounder:
    """A draft checked sentence by sentence as it arrives: `feed(piece)` and `finish()` return
    the sentences kept so far, so a streamed answer is sent as it is verified; `checked` is the
    whole result. Sentences end where `ANSWER_SENTENCE` splits the whole draft, so a draft fed
    in pieces is checked exactly as the same draft in one piece."""

    # Characters a boundary's lookahead reads past the spaces (a citation's "[1" may follow).
    LOOKAHEAD = 2

    def __init__(self, passages: Sequence[Passage], question: str, min_support: float) -> None:
        self.passages, self.question, self.min_support = passages, question, min_support
        self.draft = ""
        self.checked_upto = 0  # where the first sentence not yet checked starts in `draft`
        self.kept: list[str] = []
        self.seen: set[str] = set()
        self.dropped_citations = self.dropped_sentences = 0
        self.leaked = False

    def feed(self, piece: str) -> list[str]:
        """The sentences `piece` completes that pass the check."""
        self.draft += piece
        return self._take(final=False)

    def finish(self) -> list[str]:
        """The last sentences of the draft that pass the check."""
        return self._take(final=True)

    @property
    def checked(self) -> Checked:
        return Checked(
            " ".join(self.kept), self.dropped_citations, self.dropped_sentences, self.leaked
        )

    def _take(self, final: bool) -> list[str]:
        ends: list[tuple[int, int]] = []
        for m in ANSWER_SENTENCE.finditer(self.draft, self.checked_upto):
            if not final and m.end() + self.LOOKAHEAD > len(self.draft):
                break  # more text may still move or cancel this boundary
            ends.append((m.start(), m.end()))
        if final:
            ends.append((len(self.draft), len(self.draft)))
        kept = []
        for start, end in ends:
            sentence = self._check(
                self.draft[self.checked_upto : start].strip(), self.draft[:start]
            )
            self.checked_upto = end
            if sentence:
                kept.append(sentence)
        self.kept += kept
        return kept

    def _check(self, sentence: str, so_far: str) -> str | None:
        """The sentence with its supported citations, or None when it is dropped."""
        if not sentence:
            return None
        if self.leaked or leaks_system_prompt(so_far):
            self.leaked = True
            self.dropped_sentences += 1
            return None
        passages = self.passages
        key = " ".join(sorted(terms(CITATION.sub(" ", sentence))))
        numbers = [int(n) for n in CITATION.findall(sentence)]
        good = [
            n
            for n in dict.fromkeys(numbers)
            if 1 <= n <= len(passages)
            and supports(passages[n - 1].text, sentence, self.question, self.min_support)
        ]
        self.dropped_citations += len(numbers) - len([n for n in numbers if n in good])
        if not numbers:  # uncited: keep it if a passage supports it, citing that passage
            good = [
                i
                for i, p in enumerate(passages, start=1)
                if supports(p.text, sentence, self.question, self.min_support)
            ][:1]
        if not good or key in self.seen:
            self.dropped_sentences += 1
            return None
        self.seen.add(key)
        body = re.sub(r"[ \t]+", " ", CITATION.sub("", sentence)).strip()
        end = body[-1] if body[-1:] in ".!?" else ""
        body = body.rstrip(".!? ")
        return f"{body} {''.join(f'[{n}]' for n in good)}{end or '.'}"


def check_answer(
    text: str, passages: Sequence[Passage], question: str, min_support: float
) -> Checked:
    """`text` reduced to its grounded sentences (see the module's docstring)."""
    grounder = Grounder(passages, question, min_support)
    grounder.feed(text)
    grounder.finish()
    return grounder.checked
