"""`rearag ingest`, `search` and `remove` on awkward input: every file left out is reported,
nothing stored leaves no collection, bad `-k` and unknown paths are one-line errors. The CLI
runs in this process (the embedder loads once); test_cli.py covers it as a subprocess."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import pytest

from rearag.cli import main

pytestmark = pytest.mark.slow  # ingests with the real embedder


def rearag(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `rearag ARGS`."""
    argv = sys.argv
    sys.argv = ["rearag", *args]
    try:
        with pytest.raises(SystemExit) as exited:
            main()
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def error_line(err: str) -> str:
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    return line


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
