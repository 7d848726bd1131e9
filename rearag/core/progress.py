"""Progress bars, drawn only for a person watching a terminal.

tqdm redraws a bar with carriage returns and moves the cursor up (`ESC[A`) to redraw bars
stacked under one another; on a pipe or in a log file those codes land among the lines around
them (`skipped …`). So a bar is drawn only when stderr is a terminal; elsewhere there is none,
and the summary a command prints at the end says what was done.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")


def drawn(enabled: bool = True) -> bool:
    """Whether a bar asked for (`enabled`) is drawn: only on a terminal."""
    return enabled and sys.stderr.isatty()


def progress_bar(
    iterable: Iterable[T] | None = None, *, enabled: bool = True, **options: Any
) -> tqdm[T]:
    """A tqdm bar on stderr (`options` as tqdm's), disabled unless `drawn(enabled)`."""
    return tqdm(iterable, disable=not drawn(enabled), file=sys.stderr, **options)
