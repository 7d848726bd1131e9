"""Search against a real embedded Chroma with the bundled embedder: every mode, bad queries,
and the reciprocal rank fusion of hybrid search."""

from pathlib import Path

import pytest

from rearag.core.errors import RearagError
from rearag.core.types import Passage
from rearag.tools.ingest import ingest
from rearag.tools.retriever import Retriever, reciprocal_rank_fusion
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # ingests with the real embedder


def _store(settings, name="docs", create=True):
    return Store(settings, name, create=create)


def test_ingest_then_search_every_mode(settings, docs: Path):
    store = _store(settings)
    report = ingest([docs], store, progress=False)
    assert (report.files, report.documents, report.chunks_added) == (3, 3, 3)
    assert report.skipped == []
    retriever = Retriever(settings=settings, store=store)
    for mode in ("dense", "bm25", "hybrid"):
        hits = retriever.search("magma and lava eruptions", k=2, mode=mode)
        assert hits and all(isinstance(h, Passage) for h in hits)
        assert hits[0].metadata["source"] == str((docs / "volcano.md").resolve())
        assert hits[0].metadata["title"] == "Volcanoes"
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    chess = retriever.search("Sicilian Defence", k=1, mode="bm25")[0]
    assert chess.metadata["title"] == "Chess openings" and "<p>" not in chess.text


def test_search_errors(settings, docs: Path):
    with pytest.raises(RearagError, match="does not exist"):
        Retriever("nothing-here", settings=settings)
    with pytest.raises(RearagError, match="invalid collection name"):
        Retriever("a/b", settings=settings)
    store = _store(settings)
    ingest([docs], store, progress=False)
    retriever = Retriever(settings=settings, store=store)
    with pytest.raises(RearagError, match="empty"):
        retriever.search("   ")
    with pytest.raises(RearagError, match="unknown search mode"):
        retriever.search("x", mode="fuzzy")  # type: ignore[arg-type]
    assert retriever.search("the of and", k=3, mode="bm25") == []  # only stopwords
    assert len(retriever.search("lava " * 20_000, k=2)) == 2  # huge query is clipped


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    assert [i for i, _ in fused] == ["a", "c", "b"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
