"""`rearag ingest`, `search` and `remove` (rearag.cli.corpus) on awkward input: every file left
out is reported, nothing stored leaves no collection, bad `-k` and unknown paths are one-line
errors; PDFs that make pypdf raise anything, file names that are not UTF-8 and links out of the
ingested folder are skips with a reason, never a traceback that loses the rest. The CLI runs in
this process (the embedder loads once); tests/integration/cli/test_cli.py runs it as a
subprocess."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest
from fakes.cli import error_line
from fakes.cli import rearag_in_process as rearag
from fakes.pdfs import write_flate_bomb_pdf, write_info_loop_pdf, write_nested_pdf, write_pdf

from rearag.tools.loaders import OUTSIDE_LINK

pytestmark = pytest.mark.slow  # ingests with the real embedder


@pytest.fixture
def tree(home: Path, tmp_path: Path) -> Path:
    """A documentation folder shaped like /usr/share/doc/PACKAGE."""
    root = tmp_path / "doc" / "kite"
    (root / "html" / "images").mkdir(parents=True)
    (root / "README").write_text("Kites fly on a tether in steady wind.\n")
    (root / "FAQ.txt.gz").write_bytes(gzip.compress(b"Q: Why do kites stall?\nA: Low wind.\n"))
    (root / "html" / "index.html").write_text(
        "<title>Kite manual</title><nav>Home | Next</nav><p>Box kites have <b>four</b> cells.</p>"
    )
    (root / "html" / "images" / "logo.png").write_bytes(b"\x89PNG\r\n")
    (root / "manual.ps.gz").write_bytes(gzip.compress(b"%!PS-Adobe-3.0\n"))
    (root / "empty.md").write_text("")
    return root


def test_every_file_left_out_is_reported_in_text_and_json(capsys, tree: Path):
    status, out, err = rearag(capsys, "ingest", str(tree), "-c", "kites", "--json", "-q")
    assert status == 0, err
    report = json.loads(out)
    assert (report["files"], report["documents"]) == (3, 3)
    assert [(Path(s["path"]).name, s["reason"]) for s in report["skipped"]] == [
        ("empty.md", "empty file"),
        ("logo.png", "unsupported type .png"),
        ("manual.ps.gz", "unsupported type .ps.gz"),
    ]

    status, out, err = rearag(capsys, "ingest", str(tree), "-c", "kites")
    assert status == 0, err
    assert f"skipped {tree / 'html' / 'images' / 'logo.png'}: unsupported type .png" in err
    assert "kites: 3 file(s) ingested, 3 skipped;" in out and "(=3 unchanged)" in out

    status, out, err = rearag(capsys, "search", "box kite cells", "-c", "kites", "--json")
    [hit, *_] = json.loads(out)
    assert hit["metadata"]["title"] == "Kite manual" and "Home" not in hit["text"]
    assert "four cells" in hit["text"]


def test_an_ingest_that_stores_nothing_creates_no_collection(capsys, home: Path, tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_bytes(b"\x89PNG")
    (junk / "b.txt").write_bytes(b"\x00\x01")
    for args in (["--json"], []):
        status, _, err = rearag(capsys, "ingest", str(junk), "-c", "junk", "-q", *args)
        assert status == 1
        assert "nothing to ingest: all 2 file(s) skipped (supported: .txt" in error_line(err)
    status, out, _ = rearag(capsys, "collections", "list", "--json")
    assert json.loads(out) == []


def test_search_k_below_one_and_remove_of_an_unknown_path_are_errors(capsys, tree: Path):
    assert rearag(capsys, "ingest", str(tree), "-c", "kites", "-q")[0] == 0
    for k in ("0", "-3"):
        status, out, err = rearag(capsys, "search", "kites", "-c", "kites", "-k", k)
        assert status == 1 and out == ""
        assert "k must be at least 1" in error_line(err)

    status, out, err = rearag(capsys, "remove", str(tree.parent / "README"), "-c", "kites")
    assert status == 1
    line = error_line(err)
    assert "is not in collection 'kites', nothing was deleted" in line
    assert f"did you mean {tree / 'README'}?" in line

    status, out, err = rearag(capsys, "remove", str(tree / "html"), "-c", "kites", "--json")
    assert status == 0 and json.loads(out)["chunks_deleted"] == 1


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
