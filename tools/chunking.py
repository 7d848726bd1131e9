"""Token-aware chunking: windows of embedder tokens with overlap, kept as character spans."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Chunk(BaseModel):
    index: int
    start: int  # character offsets into the document text
    end: int
    text: str


def chunk_text(text: str, tokenizer: Any, chunk_tokens: int, overlap: int) -> list[Chunk]:
    """Split `text` into chunks of at most `chunk_tokens` tokens, consecutive chunks sharing
    `overlap` tokens. Chunks are exact slices of `text`, so offsets point back into the source."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, verbose=False)
    spans = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    chunks: list[Chunk] = []
    step = chunk_tokens - overlap
    for first in range(0, len(spans), step):
        last = min(first + chunk_tokens, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(Chunk(index=len(chunks), start=start, end=end, text=text[start:end]))
        if last == len(spans) - 1:
            break
    return chunks
