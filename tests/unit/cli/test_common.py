"""What every command shares (rearag.cli.common): an argument that is not UTF-8 is one error
line naming the argument."""

from __future__ import annotations

import os

import pytest
from fakes.cli import rearag_in_process as rearag

BAD = os.fsdecode(b"\xff")  # an argument that is not UTF-8, as Python reads it: "\udcff"


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (["search", BAD, "-c", "c"], "the query"),
        (["ask", f"why {BAD}?"], "the question"),
        (["rerank", BAD], "the query"),
        (["ask", "why?", "--thread", BAD], "--thread"),
        (["search", "kites", "-c", BAD], "--collection"),
        (["--embedder", BAD, "search", "kites"], "--embedder"),
    ],
)
def test_an_argument_that_is_not_utf8_is_one_error_line(capsys, home, args, what):
    status, out, err = rearag(capsys, *args)
    assert (status, out) == (1, "")
    assert err == f"error: {what} is not valid UTF-8 text\n"
