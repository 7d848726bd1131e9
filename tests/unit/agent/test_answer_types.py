"""The kind of answer a question asks for, and the sentences that hold one: plain text."""

from __future__ import annotations

import pytest

from rearag.agent.answer_types import expected, holds


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which configuration variable disables reachability bitmaps?", "setting"),
        ("Which environment variable sets the number of threads zstd uses?", "variable"),
        ("Which C preprocessor macro do I have to define?", "variable"),
        ("Which configure option makes a smaller liblzma build?", "option"),
        ("Which lock file serializes access to the trigger system?", "path"),
        ("Since which dpkg release can I write a custom parser?", "version"),
        ("How long does apt wait for the dpkg lock?", "number"),
        ("What uid does the postgres user get?", "number"),
        ("Where do I send gzip bug reports?", "address"),
        ("How do I make yq edit a YAML file in place?", "code"),
        ("How do I tell xz how many threads to use?", "code"),  # the first phrase decides
        ("What is the default refresh interval of the watch command?", "number"),
        ("What is gzip's default compression level?", "number"),
        ("Within what variable is L constrained by the hierarchy theorem?", None),  # prose
        ("Is the GZIP environment variable still supported?", None),  # yes or no
        ("Why is ssh-agent setgid _ssh?", None),
        ("How often do the long tests run?", None),  # "once a day" is no number
        ("When did the Normans conquer England?", None),
    ],
)
def test_the_kind_of_answer_a_question_asks_for(question, kind):
    assert expected(question) == kind


def test_a_sentence_holds_the_kind_only_with_a_token_the_question_lacks():
    question = "Which dpkg-deb --build option sets the owner to root?"
    assert holds("Use the --root-owner-group option.", "option", question)
    assert not holds("dpkg-deb --build builds a package as root.", "option", question)
    assert holds("It is /var/lib/dpkg/triggers/Lock.", "path", "Which lock file is it?")
    assert holds("Set ZSTD_NBTHREADS or $ZSTD_CLEVEL.", "variable", "Which variable?")
    assert holds("Added in v1.4.5 and 1.5.0.", "version", "Since which release?")
    assert not holds("It waits a while.", "number", "How long does apt wait?")
    assert holds("Write to bug-gzip@gnu.org.", "address", "Where do I send bug reports?")
    assert holds("Run `yq -i` on it.", "code", "How do I edit in place?")
