"""The demo behind `rearag demo`: the bundled documents about rearag (`rearag.demos`), indexed
in their own collection, ready to be asked about."""

from __future__ import annotations

from pathlib import Path

import rearag.demos
from rearag.core.config import Settings
from rearag.tools.ingest import IngestReport, ingest
from rearag.tools.store import Store

DEMO_COLLECTION = "rearag-demo"
DEMO_CORPUS = Path(rearag.demos.__file__).parent / "corpus"  # shipped in the wheel too


def prepare_demo(settings: Settings, *, progress: bool = True) -> tuple[Settings, IngestReport]:
    """Index the demo corpus into DEMO_COLLECTION (unchanged chunks are kept, so a second run
    is cheap) and return the settings to ask it with."""
    # The bundled 135M model cannot judge relevance (it answers "no" to everything), so the
    # demo grades with the score check; a capable grader model needs no such override.
    demo = settings.model_copy(
        update={
            "collection": DEMO_COLLECTION,
            "grader": settings.grader.model_copy(update={"use_model": False}),
        }
    )
    report = ingest([DEMO_CORPUS], Store(demo, DEMO_COLLECTION, create=True), progress=progress)
    return demo, report
