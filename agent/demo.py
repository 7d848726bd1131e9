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
    # The demo shows every node at work, so the rewriter, the grader and the generator ask
    # their models even where rearag would not (the bundled 135M model); what they return is
    # still checked, and a draft that keeps no supported sentence gives way to extraction.
    demo = settings.model_copy(
        update={
            "collection": DEMO_COLLECTION,
            "rewriter": settings.rewriter.model_copy(update={"standalone": True}),
            "grader": settings.grader.model_copy(update={"use_model": True}),
            "generator": settings.generator.model_copy(update={"mode": "generate"}),
        }
    )
    report = ingest([DEMO_CORPUS], Store(demo, DEMO_COLLECTION, create=True), progress=progress)
    return demo, report
