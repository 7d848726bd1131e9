"""The BM25 index kept from logged changes: same results as a rebuild from Chroma's texts,
rebuilt once per batch of changes, and from Chroma when a change was not logged. Vectors are
given, so the embedder is never loaded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rearag.core.config import Settings
from rearag.tools.bm25 import BM25Index
from rearag.tools.store import Store

WORDS = ["lava", "magma", "yeast", "flour", "chess", "opening", "glacier", "valley"]
QUERIES = ["lava magma", "yeast flour valley", "chess", "glacier opening", "opening lava"]


def _texts(start: int, n: int) -> dict[str, str]:
    """n small texts with overlapping vocabularies (so scores tie and differ)."""
    return {
        f"c{i}": " ".join(WORDS[(i * j) % len(WORDS)] for j in range(1, 2 + i % 5))
        for i in range(start, start + n)
    }


def _add(store: Store, texts: dict[str, str]) -> int:
    ids = list(texts)
    meta = [{"source": "/t", "doc_id": i, "title": ""} for i in ids]
    return store.add(ids, list(texts.values()), meta, [[1.0, float(n)] for n in range(len(ids))])


def _from_chroma(store: Store, folder: Path) -> BM25Index:
    """What every change used to do: read all texts back from Chroma and index them."""
    index = BM25Index(folder)
    data = store._get_all(include=["documents"])
    index.rebuild(data["ids"], data["documents"])
    return index


@pytest.fixture
def store(settings: Settings) -> Store:
    return Store(settings, "lex", create=True)


def test_logged_changes_give_the_results_of_a_rebuild_from_chroma(store: Store, tmp_path):
    _add(store, _texts(0, 40))
    store.sync_lexical()
    steps = [
        lambda: _add(store, _texts(40, 3)),
        lambda: store.delete(["c1", "c7", "c41"]),
        lambda: _add(store, {"c7": "glacier valley river"}),  # re-added: goes last
    ]
    for n, change in enumerate(steps):
        change()
        store.sync_lexical()
        assert store.bm25.pending() > 0  # small batches wait for the next search
        reference = _from_chroma(store, tmp_path / f"ref{n}")
        for query in QUERIES:
            assert store.lexical(query, 50) == reference.search(query, 50)
        assert store.bm25.pending() == 0
        assert store.bm25.ids() == reference.ids()  # same order: ties break the same way
    # An id the collection holds is not written again (Chroma would keep the first anyway).
    assert _add(store, {"c2": "different text, same id", "c99": "moraine"}) == 1
    reference = _from_chroma(store, tmp_path / "ref-last")
    for query in [*QUERIES, "different text"]:
        assert store.lexical(query, 50) == reference.search(query, 50)


def test_small_changes_never_read_chroma_back(store: Store, monkeypatch):
    _add(store, _texts(0, 40))
    store.sync_lexical()  # the first batch is all of the index: built now
    assert store.bm25.pending() == 0

    def no_read_back(include: list[str]) -> dict:
        raise AssertionError("read every chunk back from Chroma")

    monkeypatch.setattr(store, "_get_all", no_read_back)
    _add(store, {"g1": "glacier moraine"})
    store.delete(["c3"])
    store.sync_lexical()
    assert store.bm25.pending() == 2
    assert store.lexical("moraine", 5)[0][0] == "g1"
    assert "c3" not in store.bm25.ids() and store.bm25.size() == 40


def test_a_change_that_was_not_logged_rebuilds_from_chroma(store: Store):
    _add(store, _texts(0, 10))
    store.sync_lexical()
    # A process killed between the Chroma write and the log leaves the marker behind:
    store._stale_marker.touch()
    store.collection.add(ids=["g1"], documents=["glacier moraine"], embeddings=[[1.0, 0.0]])
    assert store.lexical("moraine", 5)[0][0] == "g1"
    assert not store._stale_marker.exists()


def test_an_index_without_saved_tokens_is_rebuilt_from_chroma(store: Store):
    _add(store, _texts(0, 10))
    store.sync_lexical()
    store.bm25.tokens_file.unlink()  # as saved by rearag before the tokens were kept
    _add(store, {"g1": "glacier moraine"})
    assert store.lexical("moraine", 5)[0][0] == "g1"
    assert store.bm25.tokens_file.is_file()


def test_a_store_sees_what_another_store_wrote(store: Store, settings: Settings):
    """What `rearag serve` needs while `rearag ingest` runs in another process: each Store has
    its own embedded Chroma system, as two processes have. An edit keeps the chunk count."""
    _add(store, _texts(0, 10))
    store.sync_lexical()
    reader = Store(settings, "lex")
    assert reader.lexical("quokka", 3) == []
    assert len(reader.dense([0.0, 1.0], 10)) == 10  # both indexes loaded

    store.delete(["c9"])  # the chunk nearest [0, 1] before the edit
    store.add(["n1"], ["quokka marsupial"], [{"source": "/t"}], [[0.0, 1.0]])
    store.sync_lexical()  # a tenth changed: rebuilt, nothing left in the log
    assert store.count() == 10 and store.bm25.pending() == 0

    assert reader.lexical("quokka", 3)[0][0] == "n1"
    dense = reader.dense([0.0, 1.0], 10)
    assert dense[0][0] == "n1" and "c9" not in dict(dense)


def test_concurrent_adds_of_the_same_ids_each_count_what_they_wrote(settings: Settings):
    texts = _texts(0, 30)
    stores = [Store(settings, "lex", create=True) for _ in range(3)]
    with ThreadPoolExecutor(3) as pool:
        added = list(pool.map(lambda s: _add(s, texts), stores))
    assert sum(added) == 30 == stores[0].count()
    reference = _from_chroma(stores[0], stores[0].bm25.folder.with_name("ref"))
    for query in QUERIES:  # each id logged once, by the store that wrote it
        assert sorted(stores[1].lexical(query, 50)) == sorted(reference.search(query, 50))


def test_concurrent_deletes_of_the_same_ids_each_count_what_they_deleted(settings: Settings):
    texts = _texts(0, 30)
    stores = [Store(settings, "lex", create=True) for _ in range(3)]
    _add(stores[0], texts)
    with ThreadPoolExecutor(3) as pool:
        deleted = list(pool.map(lambda s: s.delete(sorted(texts)[:20]), stores))
    assert sum(deleted) == 20 and stores[0].count() == 10
    assert stores[1].delete(["not-there"]) == 0
