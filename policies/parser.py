"""Reading a permutation out of untrusted model output (rank_llm's rules). Never raises.

Take the `<answer>` content, else the text after `</think>` (the whole text only for policies
that ask for no tags); turn every non-digit into a space, read the integers as 1-based ids,
drop duplicates and ids outside the window, then append the ids the model left out in their
input order. If nothing usable is found, the window keeps its input order."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

Status = Literal["ok", "wrong_format", "repetition", "missing_documents"]

_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL | re.IGNORECASE)
_NON_DIGITS = re.compile(r"\D+")
# Numbers longer than this cannot be ids of a window; skipping them avoids huge ints.
_MAX_DIGITS = 6


class ParsedRanking(BaseModel):
    order: list[int]  # 0-based positions in the window, best first; always a permutation
    status: Status
    reasoning: str = ""


def parse_ranking(text: str, n: int, *, expect_tags: bool = True) -> ParsedRanking:
    """The permutation of `range(n)` that `text` gives. `expect_tags`: the policy asked for
    `<think>`/`<answer>`; output without them is then `wrong_format` even if ids were found."""
    text = text if isinstance(text, str) else ""
    think = _THINK.search(text)
    reasoning = think.group(1).strip() if think else ""
    answer = _ANSWER.search(text)
    if answer:
        body = answer.group(1)
    elif "</think>" in text.lower():
        body = text[text.lower().rindex("</think>") + len("</think>") :]
    elif expect_tags:
        # A reasoning policy's ranking is in <answer> or after </think>; numbers in free
        # prose ("passage [2] mentions…") are not a ranking.
        body = ""
    else:
        body = text
    ids = [int(tok) - 1 for tok in _NON_DIGITS.split(body) if tok and len(tok) <= _MAX_DIGITS]

    seen: set[int] = set()
    order: list[int] = []
    repeated = False
    for i in ids:
        if not 0 <= i < n:
            continue
        if i in seen:
            repeated = True
            continue
        seen.add(i)
        order.append(i)
    if not order:
        return ParsedRanking(order=list(range(n)), status="wrong_format", reasoning=reasoning)
    missing = [i for i in range(n) if i not in seen]
    order += missing
    if expect_tags and not answer:
        status: Status = "wrong_format"
    elif repeated:
        status = "repetition"
    elif missing:
        status = "missing_documents"
    else:
        status = "ok"
    return ParsedRanking(order=order, status=status, reasoning=reasoning)
