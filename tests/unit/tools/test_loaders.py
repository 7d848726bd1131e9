import gzip
import json
import os
from pathlib import Path

import pytest
from fakes.pdfs import write_flate_bomb_pdf, write_info_loop_pdf, write_nested_pdf, write_pdf

from rearag.core.errors import RearagError
from rearag.tools.loaders import OUTSIDE_LINK, SkipFile, discover, load_file

MB = 1_000_000


def test_discover_walks_folders_and_gives_every_left_out_file_a_reason(tmp_path: Path):
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("b")
    (tmp_path / "sub" / "README").write_text("no suffix: plain text")
    (tmp_path / "sub" / "FAQ.txt.gz").write_bytes(gzip.compress(b"faq"))
    (tmp_path / "sub" / "c.png").write_bytes(b"\x89PNG")
    (tmp_path / "sub" / "manual.ps.gz").write_bytes(gzip.compress(b"%!PS"))
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "d.txt").write_text("d")
    (tmp_path / ".notes.md").write_text("e")
    odd = tmp_path / "notes.docx"
    odd.write_bytes(b"PK")
    files, skipped = discover([tmp_path, tmp_path / "a.md", odd])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a.md",
        "sub/FAQ.txt.gz",
        "sub/README",
        "sub/b.txt",
    ]
    assert [(p.relative_to(tmp_path).as_posix(), why) for p, why in skipped] == [
        (".git", "hidden folder"),
        (".notes.md", "hidden file"),
        ("notes.docx", "unsupported type .docx"),
        ("sub/c.png", "unsupported type .png"),
        ("sub/manual.ps.gz", "unsupported type .ps.gz"),
    ]


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
        ("late-nul.txt", b"plain text " * 2000 + b"\x00 and more", "binary"),
        ("latin.txt", "café crème".encode("latin-1"), "not UTF-8"),
        ("bad.pdf", b"%PDF-1.4 garbage", "PDF"),
        ("bad.jsonl", b"{nope\n[1, 2]\n", "no usable records"),
        ("big.txt", b"a" * (MB + 1), "over the limit"),
        ("bad.txt.gz", b"not gzip at all", "not a valid gzip file"),
        ("cut.md.gz", gzip.compress(b"# T\n" * 1000)[:40], "not a valid gzip file"),
        ("bomb.txt.gz", gzip.compress(b"a" * (MB + 1)), "decompressed, it is over the limit"),
        ("void.txt.gz", gzip.compress(b""), "empty file once decompressed"),
    ],
)
def test_unusable_files_are_skipped_with_a_reason(tmp_path: Path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(SkipFile, match=reason):
        load_file(path, MB)


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (write_info_loop_pdf, "unreadable PDF: AttributeError: "),
        (write_nested_pdf, "unreadable PDF: RecursionError: maximum recursion depth"),
        (write_flate_bomb_pdf, "unreadable PDF: LimitReachedError: "),
    ],
)
def test_hostile_pdfs_are_skipped_with_a_reason(tmp_path: Path, write, reason: str):
    path = tmp_path / "hostile.pdf"
    write(path)
    with pytest.raises(SkipFile) as skipped:
        load_file(path, 10 * MB)
    assert str(skipped.value).startswith(reason) and "\n" not in str(skipped.value)


def test_a_file_name_that_is_not_utf8_gives_a_storable_source(tmp_path: Path):
    path = tmp_path / os.fsdecode(b"caf\xe9.txt")  # Latin-1 bytes, read as "caf\udce9"
    path.write_text("Coffee roasting turns green beans brown.")
    [doc] = load_file(path, MB).docs
    assert doc.source == doc.doc_id == f"{tmp_path}/caf\\xe9.txt"


def test_lone_surrogates_from_json_escapes_become_question_marks(tmp_path: Path):
    path = tmp_path / "odd.jsonl"
    path.write_text('{"_id": "d\\ud800", "title": "T\\udfff", "text": "ice \\udc00 melts"}\n')
    [doc] = load_file(path, MB).docs
    assert (doc.doc_id, doc.title, doc.text) == ("d?", "T?", "ice ? melts")


def test_links_out_of_the_folder_are_skipped_unless_followed(tmp_path: Path):
    outside, folder = tmp_path / "outside", tmp_path / "docs"
    (outside / "dir").mkdir(parents=True)
    (outside / "secret.txt").write_text("s")
    (outside / "dir" / "inner.txt").write_text("i")
    (outside / "dir" / "up").symlink_to(outside)  # a loop, once followed
    (folder / "real").mkdir(parents=True)
    (folder / "real" / "a.txt").write_text("a")
    (folder / "x.txt").symlink_to(outside / "secret.txt")
    (folder / "out").symlink_to(outside / "dir")
    (folder / "same.txt").symlink_to(folder / "real" / "a.txt")
    (folder / "alias").symlink_to(folder / "real")
    (outside / "dir" / "back").symlink_to(folder)

    files, skipped = discover([folder])
    assert files == [folder / "real" / "a.txt"]
    assert [(p.name, why) for p, why in skipped] == [
        ("alias", "symlinked folder, not followed"),
        ("out", OUTSIDE_LINK),
        ("x.txt", OUTSIDE_LINK),
    ]

    files, skipped = discover([folder], follow_links=True)
    assert sorted(files) == sorted(
        [folder / "real" / "a.txt", outside / "secret.txt", outside / "dir" / "inner.txt"]
    )
    assert [(p.name, why) for p, why in skipped] == [
        ("alias", "symlinked folder, not followed"),
        ("back", "symlinked folder, not followed"),
    ]

    # A link named itself is what was asked for, and a linked folder named itself is walked.
    assert discover([folder / "x.txt"]) == ([outside / "secret.txt"], [])
    assert discover([folder / "out"])[0] == [outside / "dir" / "inner.txt"]


def test_files_of_other_types_are_read_when_their_content_is_text(tmp_path: Path):
    """Content, not the suffix, decides for types without a reader: text (gzipped too) is read
    as plain text, untitled; a binary or a type that is never a document is left out unread; a
    Latin-1 or empty file is read, and then says what is wrong with it."""
    (tmp_path / "README.Debian").write_text("Notes for Debian users.\n")
    (tmp_path / "NEWS.Debian.gz").write_bytes(gzip.compress("# Ünïcode news\n".encode()))
    (tmp_path / "notes.latin1").write_bytes("Café au lait.\n".encode("latin-1"))
    (tmp_path / "empty.conf").write_bytes(b"")
    (tmp_path / "core.dump").write_bytes(b"\x7fELF\x02\x01\x01\x00" * 8)
    (tmp_path / "style.css").write_text("body { color: red }\n")
    (tmp_path / "broken.log.gz").write_bytes(b"\x1f\x8b not really gzip")
    files, skipped = discover([tmp_path])
    assert [f.name for f in files] == [
        "NEWS.Debian.gz",
        "README.Debian",
        "empty.conf",
        "notes.latin1",
    ]
    assert [(p.name, why) for p, why in skipped] == [
        ("broken.log.gz", "unsupported type .log.gz"),
        ("core.dump", "unsupported type .dump"),
        ("style.css", "unsupported type .css"),
    ]
    [doc] = load_file(tmp_path / "NEWS.Debian.gz", MB).docs
    assert (doc.title, doc.text) == ("", "# Ünïcode news\n")  # plain text: no heading title
    with pytest.raises(SkipFile, match="not UTF-8"):
        load_file(tmp_path / "notes.latin1", MB)
    with pytest.raises(SkipFile, match="empty file"):
        load_file(tmp_path / "empty.conf", MB)


def test_include_and_exclude_globs_select_what_is_read_and_reported(tmp_path: Path):
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "a.md").write_text("a")
    (tmp_path / "guide" / "b.txt").write_text("b")
    (tmp_path / "guide" / "c.png").write_bytes(b"\x89PNG")
    (tmp_path / ".git").mkdir()
    files, skipped = discover([tmp_path], include=["guide/*"], exclude=["*.txt"])
    assert [f.name for f in files] == ["a.md"]
    assert [(p.name, why) for p, why in skipped] == [("c.png", "unsupported type .png")]
    files, skipped = discover([tmp_path / "guide" / "b.txt"], include=["b.txt"])
    assert [f.name for f in files] == ["b.txt"] and skipped == []  # a file named: its name
    with pytest.raises(RearagError, match=r"--include '\*.rst' matches no file in "):
        discover([tmp_path], include=["*.md", "*.rst"])


def test_utf8_bom_is_accepted(tmp_path: Path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello".encode())
    assert load_file(path, MB).docs[0].text == "hello"


# A page shaped like texinfo's output (libffi, gcc, …): a navigation panel, inline code and
# variables inside sentences, a <pre> example, plus the HTML5 chrome of a hand-written site.
TEXINFO_PAGE = """<!DOCTYPE html>
<html><head><title>The Closure API (libffi)</title>
<style>span.roman {font-family: initial}</style>
<script>window.track("visit")</script></head>
<body lang="en">
<header><a href="/">Site home</a> | <a href="/blog">Blog</a></header>
<nav><ul><li><a href="a.html">Sidebar link</a></li></ul></nav>
<div class="section" id="The-Closure-API">
<div class="header"><p>
Next: <a href="Closure-Example.html" rel="next">Closure Example</a>, Previous:
<a href="Multiple-ABIs.html" rel="prev">Multiple ABIs</a>, Up: <a href="u.html">Using</a>
</p></div>
<hr>
<h3 class="section">2.5 The Closure API</h3>
<p><code>libffi</code> also provides a way to write a <em>generic</em>
function.</p>
<dl class="first-deftypefn">
<dt class="deftypefn"><span class="category">Function: </span><span><code>void</code>
<strong>*ffi_closure_alloc</strong> <code>(size_t <var>size</var>, void
**<var>code</var>)</code></span></dt>
<dd><p>Allocate a chunk of memory holding <var>size</var> bytes.</p></dd>
</dl>
<pre class="example">int main()
{
  return 0;
}
</pre>
</div>
<footer>Copyright 2024 Example Corp</footer>
</body></html>
"""


def test_html_reads_as_paragraphs_without_navigation(tmp_path: Path):
    page = tmp_path / "The-Closure-API.html"
    page.write_text(TEXINFO_PAGE)
    [doc] = load_file(page, MB).docs
    assert doc.title == "The Closure API (libffi)"
    assert doc.text.split("\n\n") == [
        "2.5 The Closure API",
        "libffi also provides a way to write a generic function.",
        "Function: void *ffi_closure_alloc (size_t size, void **code)",
        "Allocate a chunk of memory holding size bytes.",
        "int main()\n{\n  return 0;\n}",
    ]


def test_html_title_falls_back_to_h1_and_gzip_is_read(tmp_path: Path):
    page = tmp_path / "page.html.gz"
    page.write_bytes(gzip.compress(b"<h1>Install <i>it</i></h1><p>Run make.</p>"))
    [doc] = load_file(page, MB).docs
    assert (doc.title, doc.text) == ("Install it", "Install it\n\nRun make.")


@pytest.mark.parametrize(
    ("name", "text", "title", "read"),
    [
        ("a.md", "intro\n# The Title\nbody\n", "The Title", "intro\n# The Title\nbody\n"),
        ("b.md", "Setext Title\n============\n\nbody\n", "Setext Title", "Setext Title\n\nbody\n"),
        (
            "c.rst",
            "=========\nRST Title\n=========\n\nSection\n-------\n",
            "RST Title",
            "RST Title\n\nSection\n\n",
        ),
        ("d.rst", "The :ref:`pip <x>` tool\n=====\n", "The pip tool", "The pip tool\n\n"),
        # No suffix: plain text, no title; its underlines are markup all the same.
        ("README", "Plain Title\n===========\n", "", "Plain Title\n\n"),
        ("changelog.gz", "pkg (1.0) unstable\n", "", "pkg (1.0) unstable\n"),
    ],
)
def test_titles_of_text_formats(tmp_path: Path, name: str, text: str, title: str, read: str):
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    [doc] = load_file(path, MB).docs
    assert (doc.title, doc.text) == (title, read)


def test_a_page_of_directives_alone_is_not_a_document(tmp_path: Path):
    # A Sphinx index page: a toctree and a target, nothing a reader reads.
    (tmp_path / "index.rst").write_text(".. _top:\n\n.. toctree::\n   :maxdepth: 2\n\n   intro\n")
    with pytest.raises(SkipFile, match="no text"):
        load_file(tmp_path / "index.rst", MB)


def test_a_folder_that_cannot_be_read_is_reported(tmp_path: Path):
    """os.walk passes over a folder it cannot list unless asked. A folder whose path is longer
    than the system allows (ENAMETOOLONG) fails to list even for root, as a folder without read
    permission does for other users."""
    (tmp_path / "a.md").write_text("# A\n")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    depth = 0
    try:  # made one level at a time, relative to the last, as no path this long can be named
        while len(str(tmp_path)) + depth * 201 < 5000:
            os.mkdir("d" * 200, dir_fd=fd)
            deeper = os.open("d" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd, depth = deeper, depth + 1
    finally:
        os.close(fd)
    files, skipped = discover([tmp_path])
    assert files == [tmp_path.resolve() / "a.md"]
    [(folder, reason)] = skipped
    assert reason == "folder cannot be read: File name too long"
    assert set(folder.relative_to(tmp_path).parts) == {"d" * 200}
