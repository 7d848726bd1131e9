"""Rules on text that several layers apply, each stated once: how an answer cites and where
sentences end, which words count (three stop-word lists, one per check), whether a passage
supports a sentence (the agent's check and the QA metric), whether a text is valid UTF-8, and
an exception in a few words.

Where two rules look alike but give different answers, both are here, side by side, with what
each is for: a merge would change the agent's answers or the evaluation's numbers.
"""

from __future__ import annotations

import re
import string
from typing import Any

# Citations and sentences ----------------------------------------------------------------------

# How an answer cites the passages shown to its generator: [1], [2], … (1-based).
CITATION = re.compile(r"\[(\d{1,3})\]")

# Two sentence rules, for two kinds of text. An answer is split where its writer ended a
# sentence: at . ! ? before a space, unless a citation follows; or after a citation followed by
# a new sentence ("… chamber. [1] It rises …"). The generator's check and the QA evaluation
# split answers the same way.
ANSWER_SENTENCE = re.compile(r"(?<=[.!?])\s+(?!\[\d)|(?<=\])\s+(?=[A-Z\"(])|\n+")
# An extracted answer is quotes, each closed by its citation; a quote may start in lower case (a
# command: "cleandead remove files …"), so it is split after every citation instead.
EXTRACTED_QUOTE = re.compile(r"(?<=\])\s+(?!\[\d)")
# A passage is document text, with abbreviations and decimals and no citations: a sentence ends
# at . ! ? only where the next word starts a sentence (not inside "e.g." or "3.5"), or at a line
# break left by `_paragraphs`.
PASSAGE_SENTENCE = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n+")


# A line that starts a list item or a field ("- item", "2. step", "Status: deprecated", a
# changelog's "cli : new : …"): it starts a piece of its own, whatever ends the line before.
_ITEM = re.compile(r"^(?:[-*+•]\s|\d{1,2}[.)]\s|[A-Za-z][\w-]{0,20} ?:(?:\s|$))")


def _paragraphs(text: str) -> str:
    """`text` with hard-wrapped lines joined, and a line break kept after blank lines and after
    headings and before list items and fields. A heading is a short line without a mark at its
    end that stands before a blank line, a list item or a field, or that starts a paragraph and
    is not continued in lower case. The first
    line is not known to start a paragraph (a chunk may begin inside one): a short line
    followed by text is a wrapped part of a sentence ("… do not satisfy\nDepends …")."""
    pieces = []
    lines = [line.strip() for line in text.split("\n")]
    for i, line in enumerate(lines):
        after = lines[i + 1] if i + 1 < len(lines) else ""
        starts = i > 0 and not lines[i - 1]
        heading = (
            len(line.split()) <= 8
            and not line.endswith((".", ",", ";", ":"))
            and (not after or _ITEM.match(after) or (starts and not after[:1].islower()))
        )
        ends = not line or heading or bool(_ITEM.match(after))
        pieces.append(f"{line}\n" if ends else f"{line} ")
    return "".join(pieces)


def passage_sentences(text: str) -> list[str]:
    """The pieces of a passage between `PASSAGE_SENTENCE` boundaries, hard-wrapped lines joined
    and whitespace collapsed (empty pieces included)."""
    return [" ".join(s.split()) for s in PASSAGE_SENTENCE.split(_paragraphs(text))]


# Stop words -----------------------------------------------------------------------------------
# Three lists, each part of the definition of its own check; they differ on purpose and a merge
# would change what each check answers.

# The agent's `terms` (grounding's check of what an answer sentence adds to the question, its
# repeat test, evidence coverage of the question): question words and glue. The agent's answers
# depend on it.
TERM_STOP_WORDS = frozenset(
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

# The QA evaluation's `content_words`, for citation precision, where a sentence is measured
# alone (no question's words taken away): auxiliaries, pronouns and quantifiers are left out
# too. Part of the metric as rearag/eval/qa.py defines it: the reported numbers depend on it.
# fmt: off
METRIC_STOP_WORDS = frozenset({
    "the", "and", "for", "are", "was", "were", "has", "have", "had", "with", "from", "this",
    "that", "these", "those", "which", "who", "whom", "whose", "what", "when", "where", "why",
    "how", "its", "into", "onto", "than", "then", "also", "not", "but", "all", "any", "can",
    "could", "would", "should", "may", "might", "will", "been", "being", "their", "there", "they",
    "them", "his", "her", "our", "your", "about", "after", "before", "over", "under", "between",
    "during", "such", "some", "most", "more", "other", "each", "only", "very",
})
# fmt: on

# Words no search query ends with (`parse_queries`): a line of a rewriter's output ending on one
# is a fragment. Whole words of any length, so the one- and two-letter ones are here too.
DANGLING_WORDS = frozenset(
    re.findall(
        r"\w+",
        "a an the of to in on at for with and or but is are was were be by as from that this "
        "which who what how its their his her your my our",
    )
)

_PUNCTUATION = frozenset(string.punctuation)


def terms(text: str) -> set[str]:
    """The words of `text` a match means something for: three characters or more, no stop
    words, lower case."""
    return set(re.findall(r"[a-z0-9]{3,}", text.lower())) - TERM_STOP_WORDS


def stem(term: str) -> str:
    # Crude, on purpose: "originated" and "originate", "Normans" and "Norman" match.
    return term[:6]


def normalize(text: str) -> str:
    """SQuAD: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def content_words(text: str) -> set[str]:
    """The QA metric's words of `text`: normalised tokens of three characters or more, not in
    `METRIC_STOP_WORDS`, citation markers removed."""
    tokens = normalize(CITATION.sub(" ", text)).split()
    return {t for t in tokens if len(t) >= 3 and t not in METRIC_STOP_WORDS}


# Support --------------------------------------------------------------------------------------
# Two rules, for two jobs. The agent's check decides what reaches the user: it weighs only what
# a sentence adds to the question and to the prompt (an echo adds nothing and is dropped),
# matches stems so that inflections count, and takes its share from the `min_support` setting
# (0.6 by default). The QA metric scores finished answers as its definition says: SQuAD-normalised
# words matched whole, a fixed half (so citation precision does not move with the agent's
# settings), and a sentence that claims nothing counts as supported.


def added_terms(sentence: str, question: str, known: frozenset[str] = frozenset()) -> set[str]:
    """What a sentence adds, stemmed: its terms (citation markers aside) that are neither in
    the question nor in `known` (such as the words of the prompt it answers)."""
    added = terms(CITATION.sub(" ", sentence)) - terms(question) - known
    return {stem(t) for t in added}


def supports_added_terms(
    passage: str,
    sentence: str,
    question: str,
    min_support: float,
    known: frozenset[str] = frozenset(),
) -> bool:
    """The agent's check: whether `passage` contains at least `min_support` of what `sentence`
    adds (`added_terms`). A sentence that adds nothing is supported by nothing."""
    added = added_terms(sentence, question, known)
    if not added:
        return False
    found = {stem(t) for t in terms(passage)}
    return len(added & found) / len(added) >= min_support


def supports_content_words(passage: str, sentence: str) -> bool:
    """The QA metric: at least half of the sentence's `content_words` occur among the passage's
    normalised tokens; a sentence without any is supported."""
    words = content_words(sentence)
    return 2 * len(words & set(normalize(passage).split())) >= len(words)


# Encodings and errors -------------------------------------------------------------------------


def lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where in `value` (a text, or the dicts and lists of a JSON body) a lone surrogate sits,
    if anywhere: `path` to it ("body" for `value` itself) and the character. JSON escapes
    ("\\ud800") and command-line bytes that are not UTF-8 become one; no UTF-8 text can hold
    one, and a text fails only when something encodes it, so texts are checked up front."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            return f"{path or 'body'} (character {exc.start})"
    elif isinstance(value, dict):
        for key, item in value.items():
            found = lone_surrogate(key, path) or lone_surrogate(item, f"{path}.{key}".lstrip("."))
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if found := lone_surrogate(item, f"{path}[{i}]"):
                return found
    return None


# An exception in a few words, two ways. `describe` is one line of a report (a skipped file's
# reason): whitespace collapsed, cut at 200 characters with a mark, the bare type name when
# there is no message. `error_text` is what a node or backend that fell back records in an
# answer's errors: the message as raised, its first 200 characters.


def describe(exc: Exception) -> str:
    """An exception as a short line for a skip reason: its type, and its message if any."""
    message = " ".join(str(exc).split())
    if len(message) > 200:
        message = message[:200] + "…"
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def error_text(exc: Exception) -> str:
    """An exception's type and the first 200 characters of its message."""
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def validation_problems(errors: list[Any], limit: int = 5) -> str:
    """Pydantic's validation errors as one line of "where: why"; never the rejected input (a
    document, a secret) nor pydantic's documentation link."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:limit])
