"""The `rearag` command as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.cli import RAGBIN, assert_one_line_error, rearag
from fakes.pdfs import write_pdf


def command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the CLI, read from its own command tree."""
    import typer

    from rearag.cli import app

    def walk(command, path: tuple[str, ...]):
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, (*path, name))

    return list(walk(typer.main.get_command(app), ()))


def test_help_on_every_command():
    paths = command_paths()
    # The walk itself must not come back short: a few of each level, groups included.
    assert {(), ("ingest",), ("demo",), ("collections", "delete"), ("eval", "qa")} <= set(paths)
    assert {("train", "grpo"), ("train", "eval"), ("policies", "show")} <= set(paths)
    for args in paths:
        proc = rearag(*args, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout, (args, proc.stderr)
    module = subprocess.run(
        [sys.executable, "-m", "rearag", "--help"], capture_output=True, text=True, timeout=60
    )
    assert module.returncode == 0 and "ingest" in module.stdout


@pytest.mark.parametrize(
    ("args", "message", "where"),
    [
        (["bogus"], "No such command 'bogus'.", "rearag"),
        (["search"], "Missing argument 'query'.", "rearag search"),
        (["search", "q", "--bogus"], "No such option: --bogus", "rearag search"),
        (["search", "q", "--mode", "nope"], "'nope' is not one of 'dense'", "rearag search"),
        (["rerank", "q", "--policy", "nope"], "'nope' is not one of 'rearag-", "rearag rerank"),
        (["eval", "retrieval", "x", "--mode", "fuzzy"], "'hybrid', 'all'", "rearag eval retrieval"),
        (
            ["train", "build-data", "x", "--out", "y", "--part", "dev"],
            "'dev'",
            "rearag train build-data",
        ),
        (
            ["eval", "rerank", "x", "--split", "validation"],
            "'validation' is not one of 'train', 'dev', 'test'",
            "rearag eval rerank",
        ),
        (["serve", "--workers", "0"], "'--workers'", "rearag serve"),
    ],
)
def test_usage_mistakes_are_one_line_with_status_2(home, args, message, where):
    proc = rearag(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()  # no usage box, no traceback
    assert line.startswith("error: ") and message in line, line
    assert line.endswith(f"(see `{where} --help`)"), line


def test_bare_group_prints_its_help():
    proc = rearag("train")
    # Help on stdout; status 2 as for any usage mistake, since no command ran.
    assert proc.returncode == 2 and proc.stderr == ""
    assert "Usage: rearag train" in proc.stdout and "build-data" in proc.stdout


def test_ingest_search_json_roundtrip(home, docs):
    proc = rearag("ingest", str(docs), "--collection", "cli-docs", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["chunks_added"] == 3 and report["chunks_total"] == 3

    proc = rearag("search", "wild yeast starter", "-c", "cli-docs", "-k", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)
    assert len(hits) == 2
    assert set(hits[0]) == {"id", "score", "text", "metadata", "source", "title", "pages"}
    assert "Sourdough" in hits[0]["text"]

    proc = rearag("search", "Sicilian", "-c", "cli-docs", "--mode", "bm25", "-k", "1")
    assert proc.returncode == 0 and "Chess openings" in proc.stdout

    listed = json.loads(rearag("collections", "list", "--json").stdout)
    assert {"name": "cli-docs", "chunks": 3} in listed
    assert rearag("collections", "delete", "cli-docs").returncode == 0
    assert_one_line_error(rearag("search", "x", "-c", "cli-docs"), "does not exist")


def test_bad_inputs_give_one_clear_error(home, tmp_path):
    assert_one_line_error(
        rearag("ingest", str(tmp_path / "missing.txt"), "-c", "bad"), "path not found"
    )
    assert_one_line_error(rearag("search", "  ", "-c", "bad"), "does not exist")
    (tmp_path / "ok.txt").write_text("some text about kites")
    assert rearag("ingest", str(tmp_path / "ok.txt"), "-c", "bad", "-q").returncode == 0
    assert_one_line_error(rearag("search", "  ", "-c", "bad"), "query is empty")
    assert_one_line_error(rearag("search", "kites", "-c", "a b"), "invalid collection name")
    assert_one_line_error(
        rearag("--config", str(tmp_path / "none.toml"), "config", "show"), "not found"
    )
    assert_one_line_error(
        rearag("config", "show", env={"REARAG_RETRIEVER__K": "many"}), "retriever.k"
    )
    assert_one_line_error(rearag("--embedder", "gpt-4", "config", "show"), "not understood")


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("empty.txt", b"", "empty file"),
        ("binary.txt", bytes(range(256)) * 4, "binary"),
        ("latin.txt", "Zürich café".encode("latin-1"), "not UTF-8"),
        ("huge.txt", b"word " * 300_000, "over the limit"),
    ],
)
def test_unusable_file_is_reported_with_nonzero_exit(home, tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    proc = rearag("ingest", str(path), "-c", "files", env={"REARAG_INGEST__MAX_FILE_MB": "1"})
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"skipped {path}: " in proc.stderr and reason in proc.stderr


def test_config_show_reflects_precedence(home, tmp_path):
    (tmp_path / "work" / "rearag.toml").write_text('[retriever]\nk = 4\nmode = "bm25"\n')
    proc = rearag(
        "--chroma-host",
        "127.0.0.1",
        "config",
        "show",
        "--json",
        env={"REARAG_RETRIEVER__K": "6"},
        cwd=tmp_path / "work",
    )
    cfg = json.loads(proc.stdout)
    assert cfg["retriever"] == {"mode": "bm25", "k": 6, "candidates": 100, "rrf_k": 60}
    assert cfg["store"]["chroma_host"] == "127.0.0.1"
    assert cfg["home"] == str(home)
    text = rearag("config", "show", cwd=tmp_path / "work").stdout
    assert "[retriever]" in text and "k = 4" in text


def test_an_argv_that_is_not_utf8_from_the_shell(home: Path):
    proc = subprocess.run(
        [RAGBIN, b"search", b"\xff", b"-c", b"c"], capture_output=True, timeout=120
    )
    assert (proc.returncode, proc.stdout) == (1, b"")
    assert proc.stderr == b"error: the query is not valid UTF-8 text\n"


def test_ingest_on_a_pipe_writes_no_progress_codes(home, tmp_path):
    """Progress bars are for a terminal: on a pipe (or in a log file) stderr holds the skipped
    lines and nothing else, no carriage returns or cursor-up codes (`ESC[A`) between them."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(3):
        (folder / f"kites-{i}.txt").write_text(f"Box kites fly in steady wind, note {i}.\n")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    proc = rearag("ingest", str(folder), "-c", "piped")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b[" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"skipped {folder / 'logo.png'}: unsupported type .png"]


def test_search_shows_where_each_hit_is(home, tmp_path):
    """Sources that share a title are told apart by their path as ingested, a .jsonl record
    by its id, a PDF's passage by its page."""
    docs = tmp_path / "docs"
    for part in ("install", "usage", "faq", "api"):
        (docs / part).mkdir(parents=True)
        (docs / part / "index.md").write_text(f"# Overview\n\nBox kites {part}: kites fly.\n")
    write_pdf(docs / "manual.pdf", "Box kites fly in steady wind", title="Overview")
    record = {"_id": "k7", "title": "Overview", "text": "Box kites fly on a long line."}
    (docs / "corpus.jsonl").write_text(json.dumps(record) + "\n")
    assert rearag("ingest", str(docs), "-c", "overviews", "-q").returncode == 0
    proc = rearag("search", "box kites fly", "-c", "overviews", "-k", "6")
    assert proc.returncode == 0, proc.stderr
    for part in ("install", "usage", "faq", "api"):
        assert f"Overview  (docs/{part}/index.md)" in proc.stdout
    assert "Overview  (docs/manual.pdf, p. 1)" in proc.stdout
    assert "Overview  (docs/corpus.jsonl#k7)" in proc.stdout


def test_text_files_of_any_name_are_read_by_their_content(home, tmp_path):
    """A Debian doc folder: names with unknown suffixes (also gzipped) are read as plain text
    when their content is text; a binary file with an unknown suffix is still skipped."""
    docs = tmp_path / "doc" / "git"
    docs.mkdir(parents=True)
    (docs / "README.Debian").write_text("The git-daemon-run package runs git daemon.\n")
    (docs / "changelog.Debian.gz").write_bytes(
        gzip.compress(b"git (1:2.39.2-1) unstable; urgency=medium\n\n  * New upstream release.\n")
    )
    (docs / "v2.38-ReleaseNotes.gz").write_bytes(
        gzip.compress(b"Git v2.38 Release Notes\n\n * scalar manages large repositories.\n")
    )
    (docs / "pack.idx").write_bytes(bytes(range(256)) * 8)  # NUL bytes: binary
    (docs / "blob.bin.gz").write_bytes(gzip.compress(bytes(range(256))))
    proc = rearag("ingest", str(docs), "-c", "git-docs", "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["files"], report["documents"]) == (3, 3)
    assert [(Path(s["path"]).name, s["reason"]) for s in report["skipped"]] == [
        ("blob.bin.gz", "unsupported type .bin.gz"),
        ("pack.idx", "unsupported type .idx"),
    ]
    for query, name in (
        ("scalar large repositories", "v2.38-ReleaseNotes.gz"),
        ("git-daemon-run package", "README.Debian"),
        ("new upstream release", "changelog.Debian.gz"),
    ):
        proc = rearag("search", query, "-c", "git-docs", "-k", "1", "--json")
        assert json.loads(proc.stdout)[0]["metadata"]["path"] == f"git/{name}"


def test_ingest_include_and_exclude_select_files(home, tmp_path):
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "notes").mkdir()
    (docs / "guide" / "start.md").write_text("# Start\n\nKites need steady wind.\n")
    (docs / "guide" / "draft.md").write_text("# Draft\n\nKites, unfinished.\n")
    (docs / "notes" / "tips.md").write_text("# Tips\n\nFly kites on open fields.\n")
    (docs / "notes" / "todo.txt").write_text("Buy kite string.\n")
    (docs / "logo.png").write_bytes(b"\x89PNG")

    def ingested(collection: str, *options: str) -> tuple[dict, set[str]]:
        proc = rearag("ingest", str(docs), "-c", collection, "--json", "-q", *options)
        assert proc.returncode == 0, proc.stderr
        hits = rearag("search", "kites", "-c", collection, "-k", "9", "--json").stdout
        return json.loads(proc.stdout), {h["metadata"]["path"] for h in json.loads(hits)}

    # Globs match the path from the folder named, or the file name; files they leave out are
    # not reported (logo.png is not "skipped").
    report, paths = ingested("picked", "--include", "*.md", "--exclude", "guide/draft.md")
    assert paths == {"docs/guide/start.md", "docs/notes/tips.md"} and report["skipped"] == []
    # Repeatable, and --exclude wins over --include.
    report, paths = ingested(
        "texts", "--include", "guide/*", "--include", "notes/*.txt", "--exclude", "*.md"
    )
    assert paths == {"docs/notes/todo.txt"} and report["skipped"] == []

    # An include that selects nothing is one clear error, and leaves no collection behind.
    proc = rearag("ingest", str(docs), "-c", "typo", "--include", "docs/guide/*")
    assert_one_line_error(proc, "--include 'docs/guide/*' matches no file in")
    listed = json.loads(rearag("collections", "list", "--json").stdout)
    assert "typo" not in {c["name"] for c in listed}
