"""The QA metrics of one answer (rearag.eval.qa_metrics) on hand-built answers, computed by
hand below."""

from __future__ import annotations

import pytest

from rearag.core.types import Answer, Citation
from rearag.eval import qa_metrics

ROLLO = "Rollo led the Norse raiders and pirates."


def answer(text: str, citations: list[Citation]) -> Answer:
    return Answer(
        question="Who was Rollo?",
        answer=text,
        citations=citations,
        sources=citations,
        abstained=False,
        queries=[],
        attempts=1,
        invalid_citations=0,
        reasoning=[],
        errors=[],
        timings={},
    )


def cite(number: int, text: str, doc_id: str) -> Citation:
    return Citation(number=number, id=f"chunk-{doc_id}", text=text, metadata={"doc_id": doc_id})


def test_exact_match_and_f1_on_squad_normalised_words():
    assert qa_metrics.exact_match("The Vikings!", "vikings") == 1.0
    assert qa_metrics.exact_match("in France", "France") == 0.0
    # 1 common word of 2 predicted and 1 gold: precision 1/2, recall 1: F1 2/3.
    assert qa_metrics.f1_score("in France", "France") == pytest.approx(2 / 3)
    assert qa_metrics.f1_score("", "France") == 0.0


def test_contains_answer_is_word_bounded():
    assert qa_metrics.contains_answer("It was in France [1].", ["france"])
    assert not qa_metrics.contains_answer("Frances", ["France"])
    assert not qa_metrics.contains_answer("anything", ["", "the"])  # nothing left to find


def test_attribution_by_gold_paragraph_or_by_a_passage_holding_an_answer():
    by_id = answer("Rollo [1].", [cite(1, "Nothing of use.", "Normans:2")])
    by_text = answer("Rollo [1].", [cite(1, ROLLO, "Normans:5")])
    assert qa_metrics.is_attributed(by_id, ["a Viking leader"], "Normans:2")
    assert qa_metrics.is_attributed(by_text, ["the Norse raiders"], None)
    assert not qa_metrics.is_attributed(by_text, ["a Viking leader"], "Normans:2")


def test_citation_pairs_count_each_number_once_a_sentence():
    given = answer(
        "Rollo led the Norse raiders [1]. He swore fealty to Charles III [1] [3] [1].",
        [cite(1, ROLLO, "Normans:5")],
    )
    # (s1, 1): rollo, led, norse, raiders all in ROLLO. (s2, 1): 0 of swore, fealty, charles, iii.
    # (s2, 3): no citation 3.
    assert qa_metrics.citation_pairs(given) == (1, 3)


def test_answer_text_is_scored_without_citation_markers():
    assert qa_metrics.answer_text(answer("Rollo [1][2].", [])) == "Rollo   ."


def test_an_extracted_answer_is_split_after_each_quote_even_in_lower_case():
    # Two quotes, the second a command line in lower case: each is checked against its own
    # passage. Split by the capital-letter rule they were one sentence, and the first citation
    # did not support the command's words (docsqa's ninja answers).
    ninja = "compdb prints a Clang compilation database for the compiler rules it is given."
    given = answer(
        "Ninja has no rules for compiling C code. [1] "
        "compdb prints a Clang compilation database for the compiler rules it is given. [2]",
        [
            cite(1, "Out of the box, Ninja has no rules for compiling C code.", "a"),
            cite(2, ninja, "b"),
        ],
    )
    assert qa_metrics.citation_pairs(given.model_copy(update={"mode": "extractive"})) == (2, 2)
    assert qa_metrics.citation_pairs(given.model_copy(update={"mode": "generated"})) == (1, 2)
