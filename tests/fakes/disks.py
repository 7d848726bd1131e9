"""Small and read-only disks for the disk-fault tests: a tmpfs mounted on a folder of the test.
Mounting needs root (or CAP_SYS_ADMIN); where the kernel refuses, the test is skipped with the
kernel's reason, never silently."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "3m") mounted at `folder` for the block."""
    folder.mkdir(parents=True, exist_ok=True)
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)]
    done = subprocess.run(mount, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()} (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], capture_output=True)


def remount(folder: Path, options: str) -> None:
    """Change a `small_disk`'s mount options: "ro", "rw", "size=50m"."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Write a file in `folder` until the disk is full; returns it (delete it to free the room)."""
    filler = folder / "filler"
    try:
        with filler.open("wb") as out:
            while True:
                out.write(b"\0" * (1 << 12))
                out.flush()
    except OSError:  # ENOSPC: full
        return filler
