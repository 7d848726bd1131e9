"""Token-aware chunking: windows of embedder tokens with overlap, kept as character spans.

The text is tokenized a piece at a time, so memory stays bounded whatever the document's size
(a tokenizer's offsets for a 20 MB text at once take gigabytes). A piece ends where a run of
blanks begins, so the next one starts with the whole run: tokenizers that split at whitespace
first (word-piece; SentencePiece and byte-level BPE, which glue a space to the word after it)
then give the tokens the whole text would. A stretch without blanks is cut anyway: chunks there
may differ a little from the whole text's, and are still exact slices.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

PIECE_CHARS = 65_536  # about 16k tokens a call: a few MB of offsets

# The last non-blank character before a blank, within a piece: the piece ends after it. Only
# ASCII blanks: a tokenizer may drop or join other characters Python calls whitespace.
_LAST_WORD_END = re.compile(r".*[^ \t\n\r](?=[ \t\n\r])", re.DOTALL)


class Chunk(BaseModel):
    index: int
    start: int  # character offsets into the document text
    end: int
    text: str


def chunk_text(text: str, tokenizer: Any, chunk_tokens: int, overlap: int) -> list[Chunk]:
    """Split `text` into chunks of at most `chunk_tokens` tokens, consecutive chunks sharing
    `overlap` tokens. Chunks are exact slices of `text`, so offsets point back into the source."""
    return list(iter_chunks(text, tokenizer, chunk_tokens, overlap))


def iter_chunks(
    text: str, tokenizer: Any, chunk_tokens: int, overlap: int, piece_chars: int = PIECE_CHARS
) -> Iterator[Chunk]:
    """`chunk_text`, one chunk at a time, tokenizing about `piece_chars` characters at once."""
    step = chunk_tokens - overlap
    spans: list[tuple[int, int]] = []  # tokens of the pieces read, from the next chunk's first on
    first = 0  # the next chunk's first token in `spans`
    index = 0
    for start, end in _pieces(text, piece_chars):
        enc = tokenizer(
            text[start:end], return_offsets_mapping=True, add_special_tokens=False, verbose=False
        )
        del spans[:first]
        first = 0
        spans += [(start + s, start + e) for s, e in enc["offset_mapping"] if e > s]
        # A full chunk is cut only once a token after it is known: the last chunk is the one
        # that reaches the text's last token, and overlapping tokens alone make no chunk.
        while len(spans) - first > chunk_tokens:
            yield _chunk(text, index, spans[first][0], spans[first + chunk_tokens - 1][1])
            index += 1
            first += step
    if len(spans) > first:
        yield _chunk(text, index, spans[first][0], spans[-1][1])


def _chunk(text: str, index: int, start: int, end: int) -> Chunk:
    return Chunk(index=index, start=start, end=end, text=text[start:end])


def _pieces(text: str, size: int) -> Iterator[tuple[int, int]]:
    """Consecutive spans of `text` of at most `size` characters, each ending where blanks begin
    in its second half; a half without blanks (a minified line) is cut where it ends."""
    start = 0
    while len(text) - start > size:
        word_end = _LAST_WORD_END.match(text, start + size // 2, start + size)
        end = word_end.end() if word_end else start + size
        yield start, end
        start = end
    if start < len(text):
        yield start, len(text)
