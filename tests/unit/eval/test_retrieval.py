from pathlib import Path

import pytest
from fakes.beir import DOCS, QRELS, QUERIES, write_beir

from rearag.eval.retrieval import evaluate_retrieval

pytestmark = pytest.mark.slow  # ingests a BEIR corpus with the real embedder


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
