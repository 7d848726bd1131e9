"""The evidence the grader and the extractive answer read: the sentences of passages. No
model: plain text in, text out."""

from __future__ import annotations

from rearag.agent.evidence import names, split_sentences


def test_sentences_of_a_chunk_leave_out_halves_and_headings():
    chunk = (
        "Normans\n"  # the title line ingestion puts in front of every chunk
        "ities of the tenth century. The Normans came from Norway and Denmark. "
        "They conquered the south of Italy and then the"  # cut at the chunk's end
    )
    assert split_sentences(chunk, title="Normans") == ["The Normans came from Norway and Denmark."]
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


def test_a_short_wrapped_line_inside_a_paragraph_is_not_a_heading():
    # dpkg's triggers spec: the answer was quoted as "Packages in 'triggers-awaited' do not
    # satisfy [1]", the wrapped line taken for a heading.
    text = (
        "Packages in 'triggers-awaited' do not satisfy\n"
        "Depends, Recommends or Pre-Depends of other packages.\n\n"
        "Usage Notes\n\n"
        "Run dpkg --configure --pending after the upgrade."
    )
    assert split_sentences(text) == [
        "Packages in 'triggers-awaited' do not satisfy Depends, Recommends or Pre-Depends of "
        "other packages.",
        "Run dpkg --configure --pending after the upgrade.",
    ]


def test_names_are_options_identifiers_and_acronyms():
    assert names(
        "Does ffi_prep_cif return FFI_BAD_ABI for --abi or -x in GPG, v2.38, foo() on M1, US?"
    ) == {
        "ffi_prep_cif",
        "ffi_bad_abi",
        "--abi",
        "-x",
        "gpg",
        "v2.38",
        "foo()",
    }
    assert names("How do I sign off a commit in git?") == set()
