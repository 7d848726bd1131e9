"""Ingestion into a real embedded Chroma with the bundled embedder: idempotent re-runs, changed
and removed files, chunk offsets and PDF pages, bad files reported, chunks stored as files are
read."""

from pathlib import Path

import pytest
from fakes.pdfs import write_pdf
from pypdf import PdfReader, PdfWriter

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.tools.ingest import ingest, remove_sources
from rearag.tools.retriever import Retriever
from rearag.tools.store import Store

pytestmark = pytest.mark.slow  # ingests with the real embedder


def _store(settings, name="docs", create=True):
    return Store(settings, name, create=create)


def test_reingest_is_idempotent_and_changes_replace_chunks(settings, docs: Path):
    store = _store(settings)
    ingest([docs], store, progress=False)
    again = ingest([docs], store, progress=False)
    assert (again.chunks_added, again.chunks_deleted, again.chunks_unchanged) == (0, 0, 3)
    assert store.count() == 3

    (docs / "bread.txt").write_text("Rye bread uses caraway seeds and a dense crumb.\n")
    changed = ingest([docs], store, progress=False)
    assert (changed.chunks_added, changed.chunks_deleted, changed.chunks_total) == (1, 1, 3)
    retriever = Retriever(settings=settings, store=store)
    assert not retriever.search("sourdough starter yeast", k=3, mode="bm25")
    assert "caraway" in retriever.search("caraway", k=1, mode="bm25")[0].text


def test_remove_keeps_bm25_in_sync(settings, docs: Path):
    store = _store(settings)
    ingest([docs], store, progress=False)
    assert remove_sources([docs / "volcano.md"], store) == 1
    assert store.count() == 2
    retriever = Retriever(settings=settings, store=store)
    assert retriever.search("volcano lava magma", k=3, mode="bm25") == []
    assert all("lava" not in h.text for h in retriever.search("volcano", k=3, mode="dense"))


def test_remove_of_a_path_not_stored_is_an_error_and_a_folder_removes_its_files(
    settings, docs: Path, tmp_path: Path
):
    store = _store(settings)
    ingest([docs], store, progress=False)
    moved = tmp_path / "elsewhere" / "volcano.md"
    with pytest.raises(RearagError, match=r"not in collection 'docs'.*did you mean .*volcano"):
        remove_sources([docs / "bread.txt", moved], store)
    assert store.count() == 3  # all or nothing: bread.txt was kept
    assert remove_sources([docs], store) == 3
    assert store.count() == 0


def test_long_documents_are_chunked_with_offsets(settings, tmp_path: Path):
    settings = load_settings(
        **{"home": settings.home, "ingest.chunk_tokens": 32, "ingest.chunk_overlap": 8}
    )
    body = " ".join(f"Paragraph {i} talks about topic number {i}." for i in range(40))
    (tmp_path / "long.txt").write_text(body)
    store = Store(settings, "long", create=True)
    report = ingest([tmp_path / "long.txt"], store, progress=False)
    assert report.chunks_added > 5
    for hit in Retriever(settings=settings, store=store).search("topic number 17", k=3):
        m = hit.metadata
        assert body[m["char_start"] : m["char_end"]] == hit.text


def test_bad_files_are_reported_and_nothing_stored_is_lost(settings, docs: Path, tmp_path):
    store = _store(settings)
    ingest([docs], store, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.txt").write_text("")
    (bad / "binary.txt").write_bytes(b"\x00\x01\x02")
    (bad / "latin.md").write_bytes("résumé".encode("latin-1"))
    (bad / "logo.png").write_bytes(b"\x89PNG")
    report = ingest([bad], store, progress=False)
    assert sorted(Path(p.path).name for p in report.skipped) == [
        "binary.txt",
        "empty.txt",
        "latin.md",
        "logo.png",
    ]
    assert (report.files, report.documents) == (0, 0)
    assert store.count() == 3
    with pytest.raises(RearagError, match="path not found"):
        ingest([docs, tmp_path / "missing"], store, progress=False)
    assert store.count() == 3


def test_pdf_chunks_know_their_pages(settings, tmp_path: Path):
    settings = load_settings(
        **{"home": settings.home, "ingest.chunk_tokens": 16, "ingest.chunk_overlap": 4}
    )
    writer = PdfWriter()
    words = [
        "intake ramps slow the incoming air before it reaches the compressor face",
        "oblique shock waves stand off the cowl lip at supersonic cruise speed",
        "the nozzle flow expands fast through the divergent section to ambient",
    ]
    for number, text in enumerate(words, start=1):
        write_pdf(tmp_path / f"{number}.pdf", text)
        writer.add_page(PdfReader(tmp_path / f"{number}.pdf").pages[0])
    writer.write(tmp_path / "book.pdf")
    store = Store(settings, "book", create=True)
    assert ingest([tmp_path / "book.pdf"], store, progress=False).chunks_added > 2
    got = store.collection.get(include=["metadatas", "documents"])
    spans = [(m["page"], m["page_end"]) for m in got["metadatas"]]
    assert {page for first, last in spans for page in range(first, last + 1)} == {1, 2, 3}
    assert any(first < last for first, last in spans)  # a chunk across a page break
    for (first, last), text in zip(spans, got["documents"], strict=True):
        assert text in "\n\n".join(words[first - 1 : last])


def test_chunks_are_stored_as_files_are_read(tmp_path: Path):
    """Memory holds one write's chunks, not the whole folder's: by the time a file half-way
    through fails to read, the files before it are embedded and stored."""
    settings = load_settings(home=tmp_path / "home", **{"embedder.batch_size": 1})  # 4 a write
    folder = tmp_path / "notes"
    folder.mkdir()
    for i in range(12):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i} on tides: observation number {i}.")
    (folder / "note06.pdf").write_bytes(b"%PDF-1.4 not really")  # read seventh, sorted
    store = _store(settings)
    stored_when_it_failed = []
    report = ingest(
        [folder],
        store,
        progress=False,
        on_problem=lambda _problem: stored_when_it_failed.append(store.count()),
    )
    assert [p.path for p in report.skipped] == [str((folder / "note06.pdf").resolve())]
    assert report.chunks_added == store.count() == 12
    assert stored_when_it_failed == [4]  # note00-note05 read: one full write of 4 stored
