"""The `rearag` command as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes.cli import RAGBIN, assert_one_line_error, rearag


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
    assert set(hits[0]) == {"id", "score", "text", "metadata", "source", "title"}
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
