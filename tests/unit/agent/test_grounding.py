"""The sentence-by-sentence citation check of generated answers, whole and as the draft
streams in. No model: plain text in, text out."""

from __future__ import annotations

from rearag.agent import nodes
from rearag.agent.grounding import check_answer, supports
from rearag.core.types import Passage

VOLCANO = Passage(
    id="v",
    text="A volcano is a rupture in the crust of a planet where lava, volcanic ash and gases "
    "escape from a magma chamber below the surface.",
)
BREAD = Passage(id="b", text="Sourdough bread is leavened by wild yeast and lactic bacteria.")
QUESTION = "Where does lava come from?"


def test_support_is_about_what_a_sentence_adds_to_the_question():
    assert supports(VOLCANO.text, "Lava comes from a magma chamber.", QUESTION, 0.6)
    assert not supports(VOLCANO.text, "Lava comes from the sun.", QUESTION, 0.6)
    # Adding nothing to the question (an echo) is supported by nothing.
    assert not supports(VOLCANO.text, f"{QUESTION}", QUESTION, 0.6)


def test_check_answer_keeps_grounded_sentences_only():
    checked = check_answer(
        "Lava comes from a magma chamber. [1] [2] It is leavened by wild yeast [2]. "
        "It is leavened by wild yeast [2]. Answer in one or two sentences [1].",
        [VOLCANO, BREAD],
        QUESTION,
        0.6,
    )
    assert checked.text == (
        "Lava comes from a magma chamber [1]. It is leavened by wild yeast [2]."
    )
    # [2] on the first sentence and the echo's [1]; the repeat and the echo are dropped.
    assert checked.dropped_citations == 2 and checked.dropped_sentences == 2


def test_streamed_content_is_the_answer_for_any_split_of_the_draft(settings):
    """However the backend cuts its text into pieces, the sentences sent are those of the
    draft checked whole (a boundary waits for the characters that decide it)."""
    draft = "Lava comes from a magma chamber. [1] It rises. A volcano is a rupture [1]!\nDone."
    whole = nodes.grounding.check_answer(draft, [VOLCANO], QUESTION, 0.6).text
    for size in (1, 2, 3, 7):
        grounder = nodes.grounding.Grounder([VOLCANO], QUESTION, 0.6)
        sent = [s for i in range(0, len(draft), size) for s in grounder.feed(draft[i : i + size])]
        sent += grounder.finish()
        assert " ".join(sent) == whole == grounder.checked.text, size
