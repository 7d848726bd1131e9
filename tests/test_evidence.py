"""The evidence the grader and the extractive answer read: sentences of passages, and the
sentence-by-sentence citation check of generated answers. No model: plain text in, text out."""

from __future__ import annotations

from rearag.agent.evidence import split_sentences
from rearag.agent.grounding import check_answer, supports
from rearag.core.types import Passage

VOLCANO = Passage(
    id="v",
    text="A volcano is a rupture in the crust of a planet where lava, volcanic ash and gases "
    "escape from a magma chamber below the surface.",
)
BREAD = Passage(id="b", text="Sourdough bread is leavened by wild yeast and lactic bacteria.")
QUESTION = "Where does lava come from?"


def test_sentences_of_a_chunk_leave_out_halves_and_headings():
    chunk = (
        "Normans\n"  # the title line ingestion puts in front of every chunk
        "ities of the tenth century. The Normans came from Norway and Denmark. "
        "They conquered the south of Italy and then the"  # cut at the chunk's end
    )
    assert split_sentences(chunk) == ["The Normans came from Norway and Denmark."]
    # A long Markdown heading too: `rearag demo` quoted "# Using a Chroma server [1]".
    section = "start one with `chroma run`.\n\n# Using a Chroma server\n\nSet the host and port."
    assert split_sentences(section) == ["Set the host and port."]


def test_hard_wrapped_lines_are_one_sentence():
    text = (
        "# Volcanoes\n\nA volcano is a rupture in the crust of a planet where lava,\n"
        "volcanic ash and gases escape from a magma chamber\nbelow the surface.\n\n"
        "Usage\n- Install it with pip and run it, e.g. daily. Then stop."
    )
    assert split_sentences(text) == [
        "A volcano is a rupture in the crust of a planet where lava, volcanic ash and gases "
        "escape from a magma chamber below the surface.",
        "- Install it with pip and run it, e.g. daily.",
    ]


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
