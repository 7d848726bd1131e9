"""`sync` (rearag.tools.sync) into a real embedded Chroma with the bundled embedder: only files
under the folders synced are deleted (folder by folder: `docs2` is not under `docs`), files
now excluded go, and a file that is there but cannot be read keeps its chunks, also when a
whole folder cannot be listed and the sync went through a link to the folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rearag.tools.ingest import ingest
from rearag.tools.store import Store
from rearag.tools.sync import sync

pytestmark = pytest.mark.slow  # ingests with the real embedder


def _sources(store: Store) -> dict[str, int]:
    """Each stored file's name (from its parent folder) and its number of chunks."""
    return {
        str(Path(source).relative_to(Path(source).parents[1])): len(ids)
        for source, ids in store.sources().items()
    }


def test_only_files_under_the_folders_synced_are_deleted(settings, tmp_path: Path):
    docs, docs2, other = tmp_path / "x" / "docs", tmp_path / "x" / "docs2", tmp_path / "other"
    for folder, topic in ((docs, "volcanoes"), (docs2, "glaciers"), (other, "comets")):
        folder.mkdir(parents=True)
        (folder / "a.txt").write_text(f"A first note about {topic}.")
        (folder / "b.txt").write_text(f"A second note about {topic}.")
    store = Store(settings, "shared", create=True)
    ingest([docs, docs2, other], store, progress=False)

    for file in docs.iterdir():
        file.unlink()
    report = sync([docs], store, progress=False)  # an empty folder: its stored files go
    assert [Path(f.path).name for f in report.deleted] == ["a.txt", "b.txt"]
    assert (report.chunks_deleted, report.chunks_total) == (2, 4)
    assert _sources(store) == {
        "docs2/a.txt": 1,
        "docs2/b.txt": 1,
        "other/a.txt": 1,
        "other/b.txt": 1,
    }


def test_a_file_now_excluded_or_no_longer_included_is_deleted(settings, docs: Path):
    store = Store(settings, "docs", create=True)
    sync([docs], store, progress=False)
    report = sync([docs], store, progress=False, exclude=["*.html"])
    assert [Path(f.path).name for f in report.deleted] == ["chess.html"]
    report = sync([docs], store, progress=False, include=["*.md"])
    assert [Path(f.path).name for f in report.deleted] == ["bread.txt"]
    assert _sources(store) == {"docs/volcano.md": 1}


def test_a_file_that_fails_to_load_keeps_its_chunks(settings, docs: Path, monkeypatch):
    store = Store(settings, "docs", create=True)
    sync([docs], store, progress=False)
    before = store.collection.get()["ids"]

    (docs / "bread.txt").write_bytes(b"Sourdough\x00")  # now binary
    from rearag.tools import ingest as ingest_module

    load_file = ingest_module.load_file

    def failing(path: Path, max_bytes: int):
        if path.name == "volcano.md":
            raise PermissionError(13, "Permission denied")  # a passing read error
        return load_file(path, max_bytes)

    monkeypatch.setattr(ingest_module, "load_file", failing)
    report = sync([docs], store, progress=False)
    assert [(Path(k.path).name, k.chunks_kept) for k in report.skipped] == [
        ("bread.txt", 1),
        ("volcano.md", 1),
    ]
    assert "PermissionError" in report.skipped[1].reason
    assert (report.deleted, report.in_sync) == ([], True)
    assert store.collection.get()["ids"] == before


def test_a_folder_that_cannot_be_listed_keeps_its_files_chunks_through_a_link(
    settings, docs: Path, tmp_path: Path, monkeypatch
):
    (docs / "locked").mkdir()
    (docs / "locked" / "tides.txt").write_text("Tides follow the moon.")
    link = tmp_path / "link"
    link.symlink_to(docs)
    store = Store(settings, "docs", create=True)
    sync([link], store, progress=False)
    assert _sources(store)["locked/tides.txt"] == 1

    walk = os.walk

    def walk_but_locked(top, onerror=None, **options):
        for current, dirs, names in walk(top, onerror=onerror, **options):
            if Path(current).name == "locked":  # as a folder without read permission
                dirs[:] = []
                onerror(PermissionError(13, "Permission denied", current))
                continue
            yield current, dirs, names

    monkeypatch.setattr(os, "walk", walk_but_locked)
    report = sync([link], store, progress=False)
    [kept] = report.skipped
    assert kept.path == str(link / "locked")  # named as found, under the link
    assert (kept.reason, kept.chunks_kept) == ("folder cannot be read: Permission denied", 1)
    assert report.deleted == [] and store.count() == 4
    # Also when the globs would not select the folder's name: what it holds is not known.
    report = sync([link], store, progress=False, include=("*.md",))
    assert [(k.path, k.chunks_kept) for k in report.skipped] == [(str(link / "locked"), 1)]
    assert sorted(Path(d.path).name for d in report.deleted) == ["bread.txt", "chess.html"]
    assert _sources(store)["locked/tides.txt"] == 1
