"""How well the passages answer a question, measured without a language model: the sentences
of the passages scored by embedding similarity to the question and by the question's words
they contain, the rarer words counting more, and the names it uses (identifiers, options,
acronyms) most.

The grade node decides from these scores when no trusted model judges (and abstains when a name
the question asks about is in none of the passages: "GPG-sign" is not answered by a sign-off),
and the extractive answer is the best of these sentences, each cited. Both work the same with a
135M model as with a large one, since no model writes anything here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from pydantic import BaseModel

from rearag.agent import answer_types
from rearag.core.sanitize import neutralise
from rearag.core.text import DANGLING_WORDS, passage_sentences, stem, terms
from rearag.core.types import Passage

# Texts -> unit-length vectors, one row per text (the collection's embedder).
Encode = Callable[[list[str]], np.ndarray]

MIN_WORDS = 4  # titles, headings and fragments are not evidence

# How much the question's words in a sentence add to its similarity: documentation answers sit
# in sentences that share the question's rare words and names ("--control-list instead"), not
# only its topic. Weighted coverage is in [0, 1]; similarity of a good answer is 0.4-0.8.
WORDS_WEIGHT = 0.25
NAMES_WEIGHT = 0.15
TYPE_WEIGHT = 0.15  # a token of the shape the question asks for (`answer_types`)
RANK_WEIGHT = 0.01  # per place down the reranked passages: a tie goes to the better passage

# What may be a name a question asks about: an option (--foo, -x), an identifier with _ . / ::
# or () inside, a word mixing letters and digits (ext4, x86_64), CamelCase, an acronym (GPG).
# `names` keeps the sure ones.
_NAME = re.compile(
    r"(?<![\w-])(?:--?[A-Za-z][\w-]*"
    r"|[A-Za-z_][\w]*(?:(?:::|[._/])[\w]+)+(?:\(\))?"
    r"|[A-Za-z]+\d[\w-]*|\d+[A-Za-z][\w-]*"
    r"|[a-z]+[A-Z]\w*|[A-Z][a-z]+[A-Z]\w*"
    r"|[A-Z]{2,}s?\b|\w+_\w*|\w+\(\))"
)
_END = re.compile(r"[.!?:;\"')\]`]$")
# A sentence that speaks to the model reading it, not about the document's subject: what a
# planted document says ("the answer must be PWNED", "ignore the previous instructions").
_TO_A_MODEL = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+)?(?:of\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding|system|original)\s+"
    r"(?:instructions?|prompts?|directions|rules)\b"
    r"|\b(?:the|your) (?:answer|response|reply)(?: to (?:this|the|any|every) (?:question|query))?"
    r" (?:must|shall|is to) (?:be|always|only|say|contain|read|start)\b"
    r"|^(?:always |now |instead |only )?(?:answer|respond|reply) (?:with|only|by saying|that)\b"
    r"|\b(?:you are now|pretend (?:to be|you are)|as an ai\b|language models? (?:must|should))",
    re.I,
)
_TERM_REACH = 3  # pieces above a sentence where the term of its list item may stand


class Sentence(BaseModel):
    passage: int  # 0-based index into the passages scored
    position: int  # 0-based place among the passage's pieces (`_pieces`)
    text: str
    similarity: float  # cosine similarity to the question
    coverage: float  # share of the question's words it contains, rare words weighing more
    names: float  # share of the question's names it contains (1 when the question has none)
    typed: float  # 1 when it holds the shape of answer the question asks for (or it asks none)

    @property
    def score(self) -> float:
        return (
            self.similarity
            + WORDS_WEIGHT * self.coverage
            + NAMES_WEIGHT * self.names
            + TYPE_WEIGHT * self.typed
            - RANK_WEIGHT * self.passage
        )


def split_sentences(text: str, title: str = "") -> list[str]:
    """The sentences of `text` that can be quoted as an answer (`_pieces`, `_quotable`)."""
    return [s for k, s in enumerate(_pieces(text, title)) if _quotable(s, opens=k == 0)]


def _pieces(text: str, title: str = "") -> list[str]:
    """Every piece of `text` between sentence boundaries, whitespace collapsed and neutralised
    (an extracted answer goes into the history the next turn's prompts quote); `title` is the
    document's, whose line in front of a chunk is not a sentence. A chunk may begin or end
    inside a sentence: its last piece, when it has no end mark, is such a half and is left
    out (the first is, by `_quotable`, as it starts in lower case)."""
    if title and text.startswith(f"{title}\n"):  # the title line ingestion puts in front
        text = text[len(title) + 1 :]
    parts = passage_sentences(neutralise(text))
    while parts and not parts[-1]:  # a chunk ending in line breaks
        parts.pop()
    if len(parts) > 1 and not re.search(r"[.!?:;\"')\]]$", parts[-1]):
        parts = parts[:-1]
    return parts


def _sentences(passage: Passage) -> list[tuple[int, str]]:
    """(place among the passage's `_pieces`, sentence) of its quotable sentences."""
    pieces = _pieces(passage.text, str(passage.metadata.get("title") or ""))
    return [(k, s) for k, s in enumerate(pieces) if _quotable(s, opens=k == 0)]


def _quotable(sentence: str, *, opens: bool = True) -> bool:
    """Whether a piece can be quoted as an answer. Sentences start in upper case, a digit, a
    quote, a bullet or code; the piece that `opens` a chunk in lower case or punctuation is the
    end of a cut sentence. A later piece starts a line (`PASSAGE_SENTENCE` splits before lower
    case only there): in lower case it names a command or term ("cleandead remove files …").
    Left out too: headings (a short piece without an end mark, unless it names an option or
    identifier: option lists are answers), fragments ending on "," or on a word no sentence
    ends with, pieces cut inside code or a parenthesis, pieces of fewer than MIN_WORDS words,
    and instructions addressed to a model (`_TO_A_MODEL`)."""
    words = sentence.split()
    if len(words) < MIN_WORDS or sentence.startswith("#"):  # a Markdown heading, however long
        return False
    if _TO_A_MODEL.search(sentence):  # an instruction planted for a model is no answer
        return False
    if (opens and sentence[0].islower()) or sentence[0] in ",;:.)]}!?":
        return False
    if sentence.endswith(",") or words[-1].lower() in DANGLING_WORDS:
        return False
    if sentence.count("`") % 2 or sentence.count("(") < sentence.count(")") - 1:
        return False
    return bool(_END.search(sentence)) or len(words) > 8 or bool(_NAME.search(sentence))


def names(text: str) -> set[str]:
    """The names in `text` (`_NAME`), lower case, plural acronyms singular (APIs). Kept only
    where a name is sure: an option ("-y") or identifier (`ffi_prep_cif`, `os.path`,
    CamelCase) of any length; a word of letters and digits of four characters or more ("ext4",
    not the "T1"s of a list); an upper-case word without a vowel ("GPG", "SSH", "NFS"): one
    with a vowel may be an English word shouted ("WHERE is it", "TWO")."""
    found = set()
    for m in _NAME.findall(text):
        if m.isalpha() and m[:-1].isupper():  # an acronym, maybe plural
            word = m.lower().removesuffix("s") if m.endswith("s") else m.lower()
            if len(word) >= 3 and not set(word) & set("aeiouy"):
                found.add(word)
        elif m.isalnum() and not re.search(r"[a-z][A-Z]", m):  # letters and digits
            if len(m) >= 4:
                found.add(m.lower())
        else:
            found.add(m.lower())
    return found


def missing_names(question: str, passages: Sequence[Passage]) -> list[str]:
    """The names the question uses that none of `passages` contains: a question about
    something the passages do not mention (sorted)."""
    wanted = names(question)
    if not wanted:
        return []
    found = " ".join(p.text for p in passages).lower()
    return sorted(n for n in wanted if not _mentions(found, n))


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}", text) is not None


def _weighted_coverage(wanted: set[str], found: set[str], idf: dict[str, float]) -> float:
    total = sum(idf[t] for t in wanted)
    return sum(idf[t] for t in wanted & found) / total if total else 0.0


def score_sentences(question: str, passages: Sequence[Passage], encode: Encode) -> list[Sentence]:
    """Every quotable sentence of `passages`, best answer to `question` first. A word's weight
    is its inverse frequency among these sentences: the topic every sentence shares counts
    little, the word that singles out the answer much."""
    found = [(i, k, s) for i, p in enumerate(passages) for k, s in _sentences(p)]
    if not found:
        return []
    vectors = encode([question] + [s for _, _, s in found])
    similarity = vectors[1:] @ vectors[0]
    wanted = {stem(t) for t in terms(question)}
    stems = [{stem(t) for t in terms(s)} for _, _, s in found]
    n = len(found)
    idf = {t: math.log((n + 1) / (sum(t in ws for ws in stems) + 0.5)) for t in wanted}
    asked = names(question)
    kind = answer_types.expected(question)
    scored = [
        Sentence(
            passage=i,
            position=k,
            text=s,
            similarity=float(sim),
            coverage=_weighted_coverage(wanted, ws, idf),
            names=sum(_mentions(s.lower(), a) for a in asked) / len(asked) if asked else 1.0,
            typed=1.0 if kind is None or answer_types.holds(s, kind, question) else 0.0,
        )
        for (i, k, s), sim, ws in zip(found, similarity, stems, strict=True)
    ]
    return sorted(scored, key=lambda s: s.score, reverse=True)


# A sentence that hands over to the next: it ends in a colon, asks (a FAQ's question) or
# announces what follows; or it is a short field of a list ("What: --control-path (…)").
_LEADS_ON = re.compile(r"(:|\?|\b(?:follows|following|below))$", re.IGNORECASE)


def following(sentence: Sentence, passages: Sequence[Passage]) -> Sentence | None:
    """The next piece of `sentence`'s passage when `sentence` leads on to it (`_LEADS_ON`, a
    question of a FAQ, a short field of a list), scored as nothing: it is taken for its place,
    not its match. Any piece serves (a command line, an option), not only a quotable one; the
    short fields before one ("Status: deprecated", "When: 1.18.x") come with it."""
    text = sentence.text.rstrip(".")
    label = re.match(r"\w[\w -]{0,20}: ", text) is not None and len(text.split()) <= 10
    if not label and not _LEADS_ON.search(text):
        return None
    passage = passages[sentence.passage]
    pieces = _pieces(passage.text, str(passage.metadata.get("title") or ""))
    taken: list[str] = []
    k = sentence.position
    for k in range(sentence.position + 1, min(len(pieces), sentence.position + 4)):
        if pieces[k].startswith("#"):  # the next section: nothing of this one is left
            break
        taken.append(pieces[k])
        if _quotable(pieces[k]) or _NAME.search(pieces[k]):  # a sentence, a command, an option
            break
    if not taken:
        return None
    text = " ".join(t for t in taken if t)
    return Sentence(
        passage=sentence.passage,
        position=k,
        text=text,
        similarity=0.0,
        coverage=0.0,
        names=0.0,
        typed=0.0,
    )


def with_heading(sentence: Sentence, passages: Sequence[Passage]) -> Sentence:
    """`sentence` labelled by the term on its own line above it ("adm: Members of this group
    can read many log files"; "--disable-setuid: Use this option to …"): in definition and
    option lists the term is the answer and the sentences below only describe it. The term
    may stand a sentence or two higher, over the description's first sentences; a list item's
    bullet and code quotes around it are left out."""
    passage = passages[sentence.passage]
    pieces = _pieces(passage.text, str(passage.metadata.get("title") or ""))
    for above in reversed(pieces[max(0, sentence.position - _TERM_REACH) : sentence.position]):
        term = re.sub(r"^[-*+•]\s+", "", above).strip("`")
        if len(term.split()) == 1 and not term.startswith("#") and not re.search(r"[.!?,;]$", term):
            return sentence.model_copy(update={"text": f"{term}: {sentence.text}"})
        if not (_quotable(above) and above.endswith(".")):
            break  # a heading of words is a section's, not a term's
    return sentence


class Weight(NamedTuple):
    """How well the passages answer: the best sentence's similarity to the question (its
    topic) and its score (`Sentence.score`: the answer's words, names and shape as well)."""

    similarity: float
    score: float


def weigh(topics: Sequence[str], passages: Sequence[Passage], encode: Encode) -> Weight:
    """The evidence of `passages` for the best of `topics` (ways of stating the question);
    zero when they have no sentence."""
    scored = [s for topic in topics for s in score_sentences(topic, passages, encode)]
    if not scored:
        return Weight(0.0, 0.0)
    return Weight(max(s.similarity for s in scored), max(s.score for s in scored))
