"""`rearag` run as a user runs it: in a subprocess (`rearag`), or in this process, where the
embedder loads once (`rearag_in_process`); and the one-line errors it must give."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

RAGBIN = Path(sys.executable).with_name("rearag")


def rearag(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [str(RAGBIN), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def assert_one_line_error(proc, fragment: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    assert fragment in lines[0], proc.stderr


def rearag_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `rearag ARGS`."""
    import pytest

    from rearag.cli import main

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
