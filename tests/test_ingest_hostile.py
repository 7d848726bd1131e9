"""`rearag ingest` and the other commands on hostile input: PDFs that make pypdf raise anything,
file names and arguments that are not UTF-8, links out of the ingested folder. A bad file is a
skip with a reason, never a traceback that loses the rest; a bad argument is one error line."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import RAGBIN
from pdfs import write_flate_bomb_pdf, write_info_loop_pdf, write_nested_pdf, write_pdf
from test_reading import error_line, rearag

from rearag.tools.loaders import OUTSIDE_LINK

CAFE = os.fsdecode(b"caf\xe9.txt")  # a Latin-1 name, as Python reads it on Linux: "caf\udce9.txt"


@pytest.mark.slow  # ingests with the real embedder
def test_bad_files_are_skipped_and_the_rest_is_ingested(capsys, home: Path, tmp_path: Path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    write_info_loop_pdf(folder / "info-loop.pdf")
    write_nested_pdf(folder / "nested.pdf")
    write_flate_bomb_pdf(folder / "bomb.pdf")
    (folder / "broken.html").write_text("<![x what the HTML parser rejects")
    status, _, err = rearag(capsys, "ingest", str(folder), "-c", "mixed", "-q")
    assert status == 1 and "nothing to ingest: all 4 file(s) skipped" in error_line(err)
    for name in ("info-loop.pdf", "nested.pdf", "bomb.pdf"):
        assert f"skipped {folder / name}: unreadable PDF: " in err
    assert f"skipped {folder / 'broken.html'}: cannot be read: ParserRejectedMarkup: " in err
    assert "Traceback" not in err

    write_pdf(folder / "tunnels.pdf", "Supersonic wind tunnels")
    (folder / CAFE).write_text("Coffee roasting turns green beans brown.")
    (folder / os.fsdecode(b"logo\xff.png")).write_bytes(b"\x89PNG")
    (folder / "odd.jsonl").write_text('{"_id": "d\\ud800", "text": "Glacier ice \\udfff melts."}')
    status, out, err = rearag(capsys, "ingest", str(folder), "-c", "mixed", "-q", "--json")
    assert status == 0, err
    report = json.loads(out)
    assert (report["files"], report["documents"]) == (3, 3)
    assert [(Path(s["path"]).name, s["reason"].split(": ")[:2]) for s in report["skipped"]] == [
        ("bomb.pdf", ["unreadable PDF", "LimitReachedError"]),
        ("broken.html", ["cannot be read", "ParserRejectedMarkup"]),
        ("info-loop.pdf", ["unreadable PDF", "AttributeError"]),
        ("logo\\xff.png", ["unsupported type .png"]),
        ("nested.pdf", ["unreadable PDF", "RecursionError"]),
    ]

    status, out, _ = rearag(capsys, "search", "coffee roasting", "-c", "mixed", "-k", "1", "--json")
    [hit] = json.loads(out)
    assert hit["metadata"]["source"] == f"{folder}/caf\\xe9.txt"  # the bad byte, spelled out
    status, out, _ = rearag(capsys, "search", "glacier", "-c", "mixed", "-k", "1", "--json")
    assert json.loads(out)[0]["text"] == "Glacier ice ? melts."

    status, out, err = rearag(capsys, "remove", str(folder / CAFE), "-c", "mixed", "--json")
    assert status == 0 and json.loads(out)["chunks_deleted"] == 1, err


@pytest.mark.slow  # ingests with the real embedder
def test_links_out_of_the_folder_are_followed_only_when_asked(capsys, home: Path, tmp_path):
    outside, folder = tmp_path / "outside", tmp_path / "docs"
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault combination is swordfish.")
    folder.mkdir()
    (folder / "kites.txt").write_text("Box kites have four cells.")
    (folder / "x.txt").symlink_to(outside / "secret.txt")
    (folder / "kites-again.txt").symlink_to(folder / "kites.txt")  # inside: read, once

    status, out, err = rearag(capsys, "ingest", str(folder), "-c", "links", "-q")
    assert status == 0, err
    assert f"skipped {folder / 'x.txt'}: {OUTSIDE_LINK}" in err
    assert "links: 1 file(s) ingested, 1 skipped;" in out

    status, out, err = rearag(capsys, "ingest", str(folder), "-c", "links", "--follow-links")
    assert status == 0, err
    assert "links: 2 file(s) ingested, 0 skipped;" in out
    status, out, _ = rearag(capsys, "search", "swordfish", "-c", "links", "-k", "1", "--json")
    assert json.loads(out)[0]["metadata"]["source"] == str(outside / "secret.txt")


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


def test_an_argv_that_is_not_utf8_from_the_shell(home: Path):
    proc = subprocess.run(
        [RAGBIN, b"search", b"\xff", b"-c", b"c"], capture_output=True, timeout=120
    )
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert proc.stderr == b"error: the query is not valid UTF-8 text\n"
