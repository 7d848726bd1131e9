import json
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, rearag

from rearag.core.config import load_settings
from rearag.core.errors import RearagError
from rearag.eval.beir import load_beir
from rearag.eval.retrieval import evaluate_retrieval

pytestmark = pytest.mark.slow  # ingests a BEIR corpus with the real embedder

DOCS = {
    "d1": ("Volcanoes", "Lava and ash erupt from a magma chamber beneath the volcano."),
    "d2": ("Sourdough", "Wild yeast and lactobacilli leaven sourdough bread dough."),
    "d3": ("Chess", "The Sicilian Defence is a sharp reply to the king's pawn opening."),
    "d4": ("Tides", "The moon's gravity raises ocean tides twice a day."),
    "d5": ("Comets", "A comet's tail of gas and dust points away from the sun."),
    "d6": ("Violins", "Violin strings vibrate when bowed, and the body resonates."),
}
QUERIES = {
    "q1": "magma eruption",
    "q2": "yeast in bread",
    "q3": "ocean tides and the moon",
    "q4": "unjudged query",
}
QRELS = [("q1", "d1", 2), ("q2", "d2", 1), ("q3", "d4", 2), ("q3", "d5", 0)]


def write_beir(folder: Path, docs, queries, qrels) -> Path:
    """A BEIR-layout dataset folder from (id -> (title, text)), (id -> text), triples."""
    root = folder / "mini-beir"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{s}\n" for q, d, s in qrels)
    )
    return root


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path, DOCS, QUERIES, QRELS)


def test_evaluate_all_modes_writes_trec_runs_and_reuses_the_index(settings, beir):
    results = evaluate_retrieval(beir, settings, ["dense", "bm25", "hybrid"], progress=False)
    assert [r.mode for r in results] == ["dense", "bm25", "hybrid"]
    for r in results:
        assert r.queries == 3  # only judged queries count
        assert r.ndcg_10 > 0.9 and r.recall_100 == 1.0  # the right document is easy to find
        lines = Path(r.run_file).read_text().splitlines()
        _, q0, did, rank, _, tag = lines[0].split()
        assert (q0, rank, tag) == ("Q0", "1", f"rearag-{r.mode}") and did in DOCS
        q1 = [line.split() for line in lines if line.startswith("q1 ")]
        assert [int(f[3]) for f in q1] == list(range(1, len(q1) + 1))
        assert len({f[2] for f in q1}) == len(q1)  # chunks mapped to documents, no repeats
        # Dense ranks every document; BM25 only those sharing a term with the query.
        assert len(q1) == (len(DOCS) if r.mode != "bm25" else 1)
    again = evaluate_retrieval(beir, settings, ["bm25"], progress=False)
    assert again[0].collection == results[0].collection
    assert again[0].ndcg_10 == results[1].ndcg_10


def test_eval_cli_json_and_bad_datasets(home, beir, tmp_path):
    proc = rearag("eval", "retrieval", str(beir), "--mode", "bm25", "--json")
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)
    assert row["mode"] == "bm25" and 0.9 < row["ndcg_10"] <= 1.0

    assert_one_line_error(rearag("eval", "retrieval", str(tmp_path)), "corpus.jsonl not found")
    proc = rearag("eval", "retrieval", str(beir), "--mode", "fuzzy")
    assert proc.returncode == 2  # a usage mistake, caught by the option's choices
    assert_one_line_error(proc, "'fuzzy' is not one of")
    with pytest.raises(RearagError, match="unknown search mode 'fuzzy'"):
        evaluate_retrieval(beir, load_settings(), ["fuzzy"], progress=False)
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1 d1\n")
    with pytest.raises(RearagError, match=r"test\.tsv:2"):
        load_beir(beir)
