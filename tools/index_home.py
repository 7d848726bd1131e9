"""Where a process keeps its index files: `$REARAG_HOME`, or, when that is read-only (a
container image, a shared read-only mount), a private copy of its index made once per process
in the temporary folder. Chroma's embedded store opens its files for writing even to search,
and BM25 rebuilds and the collection's locks write beside the index; the copy lets all of them
work unchanged. Nothing can be stored in a read-only home: ingest and remove are refused there
(`check_writable`), and conversations need a writable home or Postgres. A bundled model not
converted into the home before it became read-only is converted into a private folder, by
every process that needs it (`private_folder`)."""

from __future__ import annotations

import atexit
import errno
import functools
import os
import shutil
import tempfile
from pathlib import Path

from rearag.core.errors import ReadOnlyStorage, StorageError

_REFUSED = {errno.EROFS, errno.EACCES, errno.EPERM}
_INDEX_PARTS = ("chroma", "bm25")  # what a search reads; models and caches stay where they are


@functools.cache
def is_read_only(home: Path) -> bool:
    """Whether files cannot be made in `home` (a folder that does not exist yet is made by
    the first write, so it counts as writable)."""
    if not home.is_dir():
        return False
    try:
        handle, probe = tempfile.mkstemp(dir=home, prefix=".rearag-write-test-")
    except OSError as exc:
        if exc.errno in _REFUSED:
            return True
        raise
    os.close(handle)
    os.unlink(probe)
    return False


@functools.cache
def index_home(home: Path) -> Path:
    """The folder that holds this process's index: `home`, or its private copy when `home` is
    read-only (deleted when the process ends)."""
    if not is_read_only(home):
        return home
    copy = Path(tempfile.mkdtemp(prefix="rearag-read-only-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    try:
        for part in _INDEX_PARTS:
            if (home / part).is_dir():
                shutil.copytree(home / part, copy / part)
    except (OSError, shutil.Error) as exc:
        shutil.rmtree(copy, ignore_errors=True)
        raise StorageError(
            f"{home} is read-only and its index could not be copied to {copy.parent} to be "
            f"searched ({type(exc).__name__}): make room there (TMPDIR chooses the folder)",
            home,
        ) from None
    return copy


@functools.cache
def private_folder(folder: Path) -> Path:
    """`folder` (inside a home) if it can be written, else a private temporary one for this
    process (deleted when it ends): where a read-only home's missing converted models go."""
    if not is_read_only(folder.parent):
        return folder
    copy = Path(tempfile.mkdtemp(prefix=f"rearag-{folder.name}-"))
    atexit.register(shutil.rmtree, copy, ignore_errors=True)
    return copy


def check_writable(home: Path, what: str) -> None:
    """ReadOnlyStorage when `home` is read-only: `what` (e.g. "ingest") needs to write there."""
    if is_read_only(home):
        raise ReadOnlyStorage(
            f"{home} is read-only: {what} needs to write there; use a writable REARAG_HOME (a "
            "read-only one can still be searched and asked)",
            home,
        )
