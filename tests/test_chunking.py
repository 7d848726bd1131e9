import itertools

import pytest

from rearag.tools.chunking import chunk_text
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
