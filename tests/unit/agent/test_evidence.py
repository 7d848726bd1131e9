"""The evidence the grader and the extractive answer read: the sentences of passages. No
model: plain text in, text out."""

from __future__ import annotations

from rearag.agent.evidence import split_sentences


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
