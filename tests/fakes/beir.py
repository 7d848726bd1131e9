"""A tiny judged dataset in the BEIR layout: six documents, four queries, their qrels."""

from __future__ import annotations

import json
from pathlib import Path

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
