"""`rearag sync` (rearag.cli.corpus): after a file is deleted, one edited and one added, the
collection holds exactly the folder again, by dense search and by BM25; `--dry-run` lists the
same changes and changes nothing, not even by creating the collection; a missing path is one
error line and deletes nothing; a second sync has nothing to do; Ctrl-C leaves a usable
collection that the next sync completes; `--json` gives the report. The CLI runs in this
process, as tests/unit/cli/test_corpus.py runs `ingest`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.cli import error_line
from fakes.cli import rearag_in_process as rearag

from rearag.core.config import load_settings
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # ingests with the real embedder

NEW_BREAD = "Rye bread uses caraway seeds and a dense crumb.\n"


def _change(docs: Path) -> None:
    """The three changes a sync must carry over: one file deleted, one edited, one added."""
    (docs / "chess.html").unlink()
    (docs / "bread.txt").write_text(NEW_BREAD)
    (docs / "kites.md").write_text("# Kites\n\nBox kites have four cells and fly on a tether.\n")


def _chunks(collection: str = "notes") -> dict[str, str]:
    """Every stored chunk: id -> text."""
    got = Store(load_settings(), collection).collection.get(include=["documents"])
    return dict(zip(got["ids"], got["documents"], strict=True))


def _search(capsys, query: str, mode: str) -> list[dict]:
    status, out, err = rearag(
        capsys, "search", query, "-c", "notes", "-k", "10", "--mode", mode, "--json"
    )
    assert status == 0, err
    return json.loads(out)


def _sync(capsys, docs: Path, *args: str) -> tuple[int, str, str]:
    return rearag(capsys, "sync", str(docs), "-c", "notes", "-q", *args)


def test_sync_carries_over_a_deletion_an_edit_and_an_addition(capsys, home: Path, docs: Path):
    status, out, err = _sync(capsys, docs)
    assert status == 0, err
    assert "notes: 3 added, 0 changed, 0 deleted" in out
    _change(docs)

    status, out, err = _sync(capsys, docs)
    assert status == 0, err
    assert out.splitlines() == [
        "+ docs/kites.md (1 chunk(s))",
        "~ docs/bread.txt (+1 -1 chunk(s))",
        "- docs/chess.html (1 chunk(s))",
        "notes: 1 added, 1 changed, 1 deleted, 1 file(s) unchanged, 0 skipped; "
        "chunks +2 -2 (=1 unchanged), 3 in total",
    ]
    # k=10 > 3 chunks: dense search returns every chunk, so this is the whole collection.
    hits = _search(capsys, "bread", "dense")
    assert sorted(Path(h["metadata"]["source"]).name for h in hits) == [
        "bread.txt",
        "kites.md",
        "volcano.md",
    ]
    assert not any("Sourdough" in h["text"] or "Sicilian" in h["text"] for h in hits)
    # BM25 holds the same chunks: the old text and the deleted file are gone from it too.
    assert _search(capsys, "Sicilian Defence", "bm25") == []
    assert _search(capsys, "sourdough starter", "bm25") == []
    [bread] = _search(capsys, "caraway", "bm25")
    assert bread["text"] == NEW_BREAD.strip()
    [kites] = _search(capsys, "tether", "bm25")
    assert Path(kites["metadata"]["source"]) == docs / "kites.md"


def test_dry_run_lists_the_changes_and_changes_nothing(capsys, home: Path, docs: Path):
    status, out, _ = _sync(capsys, docs, "--dry-run")  # no collection yet: none is created
    assert status == 0 and "notes (dry run, nothing was changed): 3 added" in out
    assert json.loads(rearag(capsys, "collections", "list", "--json")[1]) == []

    assert _sync(capsys, docs)[0] == 0
    before = _chunks()
    _change(docs)
    status, out, err = _sync(capsys, docs, "--dry-run")
    assert status == 0, err
    assert out.splitlines() == [
        "+ docs/kites.md (1 chunk(s))",
        "~ docs/bread.txt (+1 -1 chunk(s))",
        "- docs/chess.html (1 chunk(s))",
        "notes (dry run, nothing was changed): 1 added, 1 changed, 1 deleted, 1 file(s) "
        "unchanged, 0 skipped; chunks +2 -2 (=1 unchanged), 3 in total",
    ]
    assert _chunks() == before
    assert _search(capsys, "Sicilian Defence", "bm25")  # still findable, as before
    assert _search(capsys, "caraway", "bm25") == []


def test_a_missing_path_is_one_error_and_deletes_nothing(capsys, home: Path, docs: Path):
    """Nor does it create a collection; neither does a sync that stores nothing."""
    assert _sync(capsys, docs)[0] == 0
    before = _chunks()
    missing = docs.parent / "dcos"  # a typo
    for args in (["sync", str(missing)], ["sync", str(docs), str(missing)]):
        status, out, err = rearag(capsys, *args, "-c", "notes")
        assert status == 1 and out == ""
        assert error_line(err) == (
            f"error: path not found: {missing} (nothing was changed: a missing path is not "
            "taken for an emptied folder)"
        )
    assert _chunks() == before
    status, _, err = rearag(capsys, "sync", str(missing), "-c", "other")
    assert status == 1 and "path not found" in error_line(err)
    (docs.parent / "empty").mkdir()
    status, out, _ = rearag(capsys, "sync", str(docs.parent / "empty"), "-c", "other")
    assert status == 0 and out.startswith("other: nothing to do; 0 file(s) unchanged")
    assert [c["name"] for c in json.loads(rearag(capsys, "collections", "list", "--json")[1])] == [
        "notes"
    ]


def test_a_second_sync_has_nothing_to_do_and_json_gives_the_report(capsys, home, docs: Path):
    assert _sync(capsys, docs)[0] == 0
    _change(docs)
    status, out, err = _sync(capsys, docs, "--json")
    assert status == 0, err
    report = json.loads(out)
    assert set(report) == {
        *("collection", "dry_run", "in_sync", "added", "changed", "unchanged", "deleted"),
        *("skipped", "warnings", "chunks_added", "chunks_deleted", "chunks_unchanged"),
        "chunks_total",
    }
    assert (report["collection"], report["dry_run"], report["in_sync"]) == ("notes", False, False)
    assert report["added"] == [
        {
            "path": str(docs / "kites.md"),
            "chunks_added": 1,
            "chunks_deleted": 0,
            "chunks_unchanged": 0,
        }
    ]
    assert [(f["path"], f["chunks_added"], f["chunks_deleted"]) for f in report["changed"]] == [
        (str(docs / "bread.txt"), 1, 1)
    ]
    assert [(f["path"], f["chunks_deleted"]) for f in report["deleted"]] == [
        (str(docs / "chess.html"), 1)
    ]
    assert [f["path"] for f in report["unchanged"]] == [str(docs / "volcano.md")]

    status, out, err = _sync(capsys, docs)
    assert status == 0, err
    assert out == "notes: nothing to do; 3 file(s) unchanged, 0 skipped; 3 chunk(s) in total\n"
    report = json.loads(_sync(capsys, docs, "--json")[1])
    assert report["in_sync"] and (report["chunks_added"], report["chunks_deleted"]) == (0, 0)


def test_a_file_that_cannot_be_read_says_its_chunks_are_kept(capsys, home: Path, docs: Path):
    assert _sync(capsys, docs)[0] == 0
    (docs / "bread.txt").write_bytes(b"Sourdough\x00")
    status, out, err = _sync(capsys, docs)
    assert status == 0, err
    assert f"skipped {docs / 'bread.txt'}: binary file (NUL bytes), not text" in err
    assert out.splitlines()[0] == (
        "! docs/bread.txt kept its 1 chunk(s): binary file (NUL bytes), not text"
    )
    assert _search(capsys, "sourdough starter", "bm25")


def test_ctrl_c_leaves_a_usable_collection_and_a_rerun_finishes(
    capsys, home: Path, docs: Path, monkeypatch
):
    assert _sync(capsys, docs)[0] == 0
    _change(docs)
    delete = Store.delete

    def interrupted_at_the_last_step(store: Store, ids: list[str]) -> int:
        if any(Path(m["source"]).name == "chess.html" for _, m in store.fetch(ids).values()):
            raise KeyboardInterrupt  # the deleted file's chunks go last
        return delete(store, ids)

    monkeypatch.setattr(Store, "delete", interrupted_at_the_last_step)
    status, _, err = _sync(capsys, docs)
    assert status == 130
    assert err == "interrupted: the collection is usable; run the same command again to finish\n"
    assert _search(capsys, "caraway", "bm25") and _search(capsys, "tether", "bm25")
    assert _search(capsys, "Sicilian Defence", "bm25")  # not deleted yet

    monkeypatch.setattr(Store, "delete", delete)
    status, out, err = _sync(capsys, docs)
    assert status == 0, err
    assert out.splitlines() == [
        "- docs/chess.html (1 chunk(s))",
        "notes: 0 added, 0 changed, 1 deleted, 3 file(s) unchanged, 0 skipped; "
        "chunks +0 -1 (=3 unchanged), 3 in total",
    ]
    assert _search(capsys, "Sicilian Defence", "bm25") == []
