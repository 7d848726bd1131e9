"""Chunking: chunks are exact, overlapping slices of the text in embedder tokens; and the text
is tokenized a piece at a time, so a 20 MB file does not need gigabytes, giving the chunks that
tokenizing the whole text at once gives."""

import itertools

import pytest
from conftest import REPO

from rearag.tools.chunking import PIECE_CHARS, Chunk, chunk_text, iter_chunks
from rearag.tools.embedder import RearagEmbeddingFunction

pytestmark = pytest.mark.slow  # loads the real embedder's tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return RearagEmbeddingFunction().tokenizer


def test_chunks_are_exact_slices_with_overlap(tokenizer):
    text = " ".join(f"word{i} is number {i}." for i in range(300))
    chunks = chunk_text(text, tokenizer, chunk_tokens=64, overlap=16)
    assert len(chunks) > 5
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        n = len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        assert n <= 64
    for a, b in itertools.pairwise(chunks):
        assert a.start < b.start < a.end  # overlapping, advancing
    assert chunks[0].start == 0
    assert chunks[-1].end == len(text.rstrip())
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_short_and_blank_text(tokenizer):
    [only] = chunk_text("  tiny text  ", tokenizer, 64, 16)
    assert (only.text, only.start) == ("tiny text", 2)
    assert chunk_text("   \n ", tokenizer, 64, 16) == []


# Blanks of every kind, accents (also as combining marks), CJK, emoji, code and punctuation.
MIXED = (
    "Résumé of the  naïve café\u0301 owner:\r\n\tline two\t\ttabbed —  «quoted»\n\n"
    "東京は日本の首都です。 Emoji 🎉🎉 and \U0001d518\U0001d52b\U0001d526; x=f(y)[0]+1;"
    " http://example.org/a?b=c\n"
    "   indented   spaces,and,commas...   unbelievably-hyphenated-compound-words!!\n"
)
TEXTS = [
    (REPO / "README.md").read_text() + "\n\n" + MIXED * 200,  # over one PIECE_CHARS piece
    MIXED * 30,
    "  tiny text  ",
    "   \n ",
]


def whole_text_chunks(text: str, tokenizer, chunk_tokens: int, overlap: int) -> list[Chunk]:
    """The chunker before pieces: every token of the text at once."""
    enc = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False, verbose=False)
    spans = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    chunks: list[Chunk] = []
    for first in range(0, len(spans), chunk_tokens - overlap):
        last = min(first + chunk_tokens, len(spans)) - 1
        start, end = spans[first][0], spans[last][1]
        chunks.append(Chunk(index=len(chunks), start=start, end=end, text=text[start:end]))
        if last == len(spans) - 1:
            break
    return chunks


@pytest.mark.parametrize("piece_chars", [100, 1000, PIECE_CHARS])
def test_pieces_give_the_chunks_of_the_whole_text(tokenizer, piece_chars: int):
    for text, (chunk_tokens, overlap) in itertools.product(TEXTS, [(200, 40), (64, 16), (16, 0)]):
        whole = whole_text_chunks(text, tokenizer, chunk_tokens, overlap)
        assert list(iter_chunks(text, tokenizer, chunk_tokens, overlap, piece_chars)) == whole


def test_the_tokenizer_never_sees_more_than_a_piece(tokenizer):
    text = MIXED * 1000  # 190k characters
    seen: list[int] = []

    def spy(piece: str, **kwargs):
        seen.append(len(piece))
        return tokenizer(piece, **kwargs)

    chunks = chunk_text(text, spy, 200, 40)
    assert len(seen) > 2 and max(seen) <= PIECE_CHARS
    assert chunks == whole_text_chunks(text, tokenizer, 200, 40)


def test_text_without_blanks_is_cut_anyway_into_exact_slices(tokenizer):
    # No blank to cut a piece at: pieces end mid-word, so a chunk there may differ from the
    # whole-text chunk, but chunks are still exact, overlapping slices that cover the text.
    text = "minified,code;" * 20_000
    chunks = list(iter_chunks(text, tokenizer, 64, 16, piece_chars=1000))
    assert all(text[c.start : c.end] == c.text for c in chunks)
    assert all(a.start < b.start < a.end for a, b in itertools.pairwise(chunks))
    assert (chunks[0].start, chunks[-1].end) == (0, len(text))
