"""The text rules of rearag.core.text, each on cases computed by hand: the three stop-word lists
in their roles, the two support rules where they disagree, the two sentence splitters, the
lone-surrogate check and the two short forms of an exception."""

from __future__ import annotations

from rearag.core.text import (
    ANSWER_SENTENCE,
    DANGLING_WORDS,
    METRIC_STOP_WORDS,
    TERM_STOP_WORDS,
    added_terms,
    content_words,
    describe,
    error_text,
    lone_surrogate,
    normalize,
    passage_sentences,
    supports_added_terms,
    supports_content_words,
    terms,
)


def test_stop_word_lists_keep_their_sizes():
    assert (len(TERM_STOP_WORDS), len(METRIC_STOP_WORDS), len(DANGLING_WORDS)) == (22, 66, 34)


def test_terms_drop_question_words_and_short_words():
    # what, does, the: stop words; "do": under three characters.
    assert terms("What does the Norman army do?") == {"norman", "army"}


def test_content_words_also_drop_auxiliaries_and_pronouns():
    sentence = "They could have sailed to Iceland [2]."
    assert content_words(sentence) == {"sailed", "iceland"}
    # The agent's list keeps them: they, could, have are not question words.
    assert terms(sentence) == {"they", "could", "have", "sailed", "iceland"}


def test_dangling_words_include_one_and_two_letter_ones():
    assert {"a", "of", "my", "the", "which"} <= DANGLING_WORDS
    assert "normans" not in DANGLING_WORDS


def test_normalize_is_squad():
    assert normalize("The  Normans, of France!") == "normans of france"


def test_added_terms_leave_out_the_question_and_known_words_and_are_stemmed():
    # normans: in the question; normandy: known; "originated" stems to "origin".
    assert added_terms(
        "The Normans originated in Normandy [1].", "Who were the Normans?", frozenset({"normandy"})
    ) == {"origin"}


PASSAGE = "The Normans settled in Normandy."


def test_the_support_rules_disagree_on_stems():
    sentence, question = "The Norman settlers stayed [1].", "Where did the Normans go?"
    # Agent: adds {norman, settle, stayed} (stems); the passage has norman and settle: 2/3.
    assert supports_added_terms(PASSAGE, sentence, question, 0.6)
    # Metric: content words {norman, settlers, stayed}, none of them a word of the passage.
    assert not supports_content_words(PASSAGE, sentence)


def test_the_support_rules_disagree_on_the_share():
    # Both: {lava, burns}, one of them in the passage: 1/2, under 0.6 and at least a half.
    assert not supports_added_terms("Lava flows from volcanoes.", "Lava burns.", "What is it?", 0.6)
    assert supports_content_words("Lava flows from volcanoes.", "Lava burns.")


def test_the_support_rules_disagree_on_a_sentence_that_adds_nothing():
    # An echo of the question adds nothing (agent: unsupported); its one content word, normans,
    # is in the passage (metric: supported). A sentence without content words claims nothing.
    assert not supports_added_terms(PASSAGE, "The Normans [1].", "Who were the Normans?", 0.6)
    assert supports_content_words(PASSAGE, "The Normans [1].")
    assert supports_content_words(PASSAGE, "It is so [1].")


def test_answer_sentences_end_at_every_mark_but_keep_their_citations():
    text = "Lava is hot. [1] It rises, e.g. in Iceland.\nDone [2]"
    assert ANSWER_SENTENCE.split(text) == [
        "Lava is hot. [1]",
        "It rises, e.g.",
        "in Iceland.",
        "Done [2]",
    ]


def test_passage_sentences_end_before_a_capital_and_join_wrapped_lines():
    text = (
        "Lava is hot. It rises, e.g. in Iceland, at 3.5 km deep below the crust\nof the planet."
        "\n\nNormans\nThe end. "
    )
    assert passage_sentences(text) == [
        "Lava is hot.",
        "It rises, e.g. in Iceland, at 3.5 km deep below the crust of the planet.",
        "Normans",  # a heading line keeps its break
        "The end.",
    ]


def test_lone_surrogate_names_where_it_is():
    assert lone_surrogate("valid é text") is None
    assert lone_surrogate("a\ud800b") == "body (character 1)"
    assert (
        lone_surrogate({"messages": [{"content": "x\udfff"}]})
        == "messages[0].content (character 1)"
    )
    assert lone_surrogate({"k\ud800": 1}) == "body (character 1)"  # a key, at its dict's path
    assert lone_surrogate(("a\ud800",)) is None  # JSON holds lists, not tuples
    assert lone_surrogate(3) is None


def test_describe_is_one_line_and_error_text_is_the_message_as_raised():
    assert describe(ValueError("bad\n  value")) == "ValueError: bad value"
    assert describe(RuntimeError()) == "RuntimeError"
    assert describe(ValueError("x" * 250)) == "ValueError: " + "x" * 200 + "…"
    assert error_text(ValueError("bad\n  value")) == "ValueError: bad\n  value"
    assert error_text(RuntimeError()) == "RuntimeError: "
    assert error_text(ValueError("x" * 250)) == "ValueError: " + "x" * 200


def test_the_metric_rule_needs_half_of_the_content_words():
    rollo = "Rollo led the Norse raiders and pirates."
    assert supports_content_words(rollo, "Rollo led the Norse [1].")  # 3 of 3
    # {rollo, swore, fealty, charles}: only rollo is in the passage, 1 of 4.
    assert not supports_content_words(rollo, "Rollo swore fealty to Charles.")
