"""What kind of text a question asks for, and whether a sentence holds one.

Documentation questions name the shape of their answer: "which option" is answered by an
option, "which environment variable" by a variable, "which file" by a path, "since which
release" by a version, "how long" by a number. The sentence that holds such a token (one the
question does not already use) is the answer; the one that only shares the topic is not.
Questions that name no shape ("why …", "what does X do?") and yes/no questions expect none.
"""

from __future__ import annotations

import re
from typing import Literal

AnswerType = Literal[
    "option", "setting", "variable", "path", "version", "number", "address", "code"
]

# What a number measures: "what is the default refresh interval", "which uid", "what port".
_QUANTITY = (
    r"(?:uid|gid|port|size|length|width|height|limit|timeout|interval|delay|priority|level"
    r"|percentage)"
)

# The question's words that announce the answer's shape, tried in this order: "configuration
# variable" is a setting before it is a variable, "configure option" an option.
_ASKS: list[tuple[AnswerType, re.Pattern[str]]] = [
    ("setting", re.compile(r"\bconfig(?:uration)? (?:variable|option|setting|key)s?\b")),
    ("variable", re.compile(r"\b(?:environment variable|shell variable|macro)s?\b")),
    ("option", re.compile(r"\b(?:option|flag|switch)s?\b")),
    ("path", re.compile(r"\b(?:which|what) (?:\w+ )?(?:file|directory|folder|path)s?\b")),
    (
        "version",
        re.compile(r"\b(?:which|what|since which|in which) (?:\w+ )?(?:version|release)s?\b"),
    ),
    ("number", re.compile(rf"\bhow (?:many|much|long|far)\b|^(?:which|what)\b.*\b{_QUANTITY}s?\b")),
    (
        "address",
        re.compile(r"\bwhere (?:do|should|can|must) (?:i|we|you) (?:send|report|ask|subscribe)\b"),
    ),
    ("code", re.compile(r"^(?:how (?:do|can|should|would) (?:i|we|you)|what command)\b")),
]

# The tokens of each shape in a sentence. "code" is any of the more specific ones, or `code`.
_OPTION = r"(?<![\w-])--?[A-Za-z][\w-]*"
_SETTING = r"\b[A-Za-z][\w-]*(?:(?:::|\.)[A-Za-z][\w-]*)+\b"
_VARIABLE = r"\$\{?[A-Za-z_]\w*|\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b"
_PATH = r"(?<![\w.])(?:~|\.{1,2})?/[\w.@$-]+(?:/[\w.@$*-]*)*|\b[\w.-]+/[\w.-]+/[\w./-]*"
_VERSION = r"\bv?\d+(?:\.\d+)+\w*\b|\b(?:release|version) \d+\b"
_NUMBER = r"\b\d+\b"
_ADDRESS = r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b|\bhttps?://\S+"
_TOKENS: dict[AnswerType, re.Pattern[str]] = {
    "option": re.compile(_OPTION),
    "setting": re.compile(_SETTING),
    "variable": re.compile(_VARIABLE),
    "path": re.compile(_PATH),
    "version": re.compile(_VERSION),
    "number": re.compile(_NUMBER),
    "address": re.compile(_ADDRESS),
    "code": re.compile("|".join([_OPTION, _SETTING, _VARIABLE, _PATH, r"`[^`]+`"])),
}


# A question that begins with an auxiliary is answered yes or no ("Is the GZIP variable still
# supported?"), whatever nouns it uses.
_YES_NO = re.compile(r"^(?:is|are|was|were|can|could|does|do|did|must|should|will|has|have)\b")


def expected(question: str) -> AnswerType | None:
    """The shape of answer `question` asks for, or None when it names none: the phrase that
    comes first decides ("how do I tell xz how many threads to use" asks for code)."""
    text = " ".join(question.lower().split())
    if _YES_NO.match(text):
        return None
    found = [
        (m.start(), k, kind) for k, (kind, asks) in enumerate(_ASKS) if (m := asks.search(text))
    ]
    return min(found)[2] if found else None


def holds(sentence: str, kind: AnswerType, question: str) -> bool:
    """Whether `sentence` holds a token of `kind` that `question` does not already use."""
    asked = question.lower()
    return any(t.lower() not in asked for t in _TOKENS[kind].findall(sentence))
