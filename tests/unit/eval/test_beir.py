"""BEIR datasets: the collection an evaluation indexes a corpus into."""

from __future__ import annotations

import pytest

from rearag.core.config import load_settings

pytestmark = pytest.mark.slow


def test_evaluation_collections_are_per_embedder_identity(tmp_path):
    """An int8 evaluation gets an index of its own; fp32 ONNX reuses torch's (same vectors)."""
    from rearag.eval.beir import corpus_collection

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "1", "text": "lava"}\n')

    def name(backend: str) -> str:
        settings = load_settings(home=tmp_path, **{"embedder.backend": backend})
        return corpus_collection(corpus, settings, "c")

    assert name("torch") == name("onnx") != name("onnx-int8")


def beir_folder(root, splits):
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text('{"_id": "d1", "text": "lava"}\n')
    (root / "queries.jsonl").write_text(
        '{"_id": "q1", "text": "what is lava"}\n{"_id": "q2", "text": "what is ash"}\n'
    )
    for split, qid in splits.items():
        (root / "qrels" / f"{split}.tsv").write_text(f"query-id\tcorpus-id\tscore\n{qid}\td1\t1\n")
    return root


def test_a_named_split_reads_its_own_judgments(tmp_path):
    from rearag.eval.beir import load_beir

    root = beir_folder(tmp_path / "b", {"train": "q1", "test": "q2"})
    assert load_beir(root).queries == {"q2": "what is ash"}  # test, as before
    train = load_beir(root, "train")
    assert (train.split, train.queries, train.qrels) == (
        "train",
        {"q1": "what is lava"},
        {"q1": {"d1": 1}},
    )


def test_a_missing_split_names_the_ones_there(tmp_path):
    from rearag.core.errors import NotFoundError
    from rearag.eval.beir import load_beir

    root = beir_folder(tmp_path / "b", {"train": "q1"})
    with pytest.raises(
        NotFoundError, match=r"test.tsv not found: .* has the split\(s\) train: pass --split train"
    ):
        load_beir(root)
