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
    # The demo shows the model at work where rearag would not ask the bundled 135M one: it
    # rewrites the first question and drafts the answer, and both are checked (a draft that
    # keeps no supported sentence gives way to extraction). The grader still decides by the
    # evidence score: asked, that model says "no" to everything and the demo would abstain.
    demo = settings.model_copy(
        update={
            "collection": DEMO_COLLECTION,
            "rewriter": settings.rewriter.model_copy(update={"standalone": True}),
            "generator": settings.generator.model_copy(update={"mode": "generate"}),
        }
    )
    report = ingest([DEMO_CORPUS], Store(demo, DEMO_COLLECTION, create=True), progress=progress)
    return demo, report
