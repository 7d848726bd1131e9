import json
from pathlib import Path

import pytest
from pdfs import write_pdf

from rearag.core.errors import RearagError
from rearag.tools.loaders import SkipFile, discover, load_file

MB = 1_000_000


def test_discover_walks_folders_skips_hidden_and_reports_unsupported(tmp_path: Path):
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "sub" / "c.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.txt").write_text("d")
    odd = tmp_path / "notes.docx"
    odd.write_bytes(b"PK")
    files, unsupported = discover([tmp_path, tmp_path / "a.md", odd])
    assert [f.name for f in files] == ["a.md", "b.txt"]
    assert unsupported == [odd]


def test_missing_path_is_an_error_before_anything(tmp_path: Path):
    with pytest.raises(RearagError, match=r"path not found: .*nope"):
        discover([tmp_path, tmp_path / "nope"])


def test_markdown_html_pdf_and_jsonl(tmp_path: Path):
    md = tmp_path / "x.md"
    md.write_text("intro\n# The Title\nbody\n")
    [doc] = load_file(md, MB).docs
    assert (doc.title, doc.doc_id, doc.source) == ("The Title", str(md), str(md))

    html = tmp_path / "x.html"
    html.write_text("<title>T</title><body><p>Hello <b>there</b></p><script>evil()</script></body>")
    [doc] = load_file(html, MB).docs
    assert doc.title == "T"
    assert "Hello" in doc.text and "there" in doc.text and "evil" not in doc.text

    pdf = tmp_path / "x.pdf"
    write_pdf(pdf, "Supersonic wind tunnels", title="Tunnels")
    [doc] = load_file(pdf, MB).docs
    assert "Supersonic wind tunnels" in doc.text and doc.title == "Tunnels"

    jsonl = tmp_path / "corpus.jsonl"
    rows = [{"_id": "d1", "title": "One", "text": "first"}, {"_id": 2, "text": "second"}]
    jsonl.write_text("\n".join(json.dumps(r) for r in rows) + "\n{broken\n\n")
    loaded = load_file(jsonl, MB)
    assert [(d.doc_id, d.title, d.text) for d in loaded.docs] == [
        ("d1", "One", "first"),
        ("2", "", "second"),
    ]
    assert "1 malformed line" in loaded.warning and "line 3" in loaded.warning


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("blank.md", b"  \n\n ", "no text"),
        ("bin.txt", b"abc\x00\x01\x02def", "binary"),
        ("latin.txt", "café crème".encode("latin-1"), "not UTF-8"),
        ("bad.pdf", b"%PDF-1.4 garbage", "PDF"),
        ("bad.jsonl", b"{nope\n[1, 2]\n", "no usable records"),
        ("big.txt", b"a" * (MB + 1), "over the limit"),
    ],
)
def test_unusable_files_are_skipped_with_a_reason(tmp_path: Path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SkipFile, match=reason):
        load_file(path, MB)


def test_utf8_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello".encode())
    assert load_file(path, MB).docs[0].text == "hello"
