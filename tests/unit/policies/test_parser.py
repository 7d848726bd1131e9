from hypothesis import given, settings
from hypothesis import strategies as st

from rearag.policies.parser import parse_ranking


def test_well_formed_answer():
    p = parse_ranking("<think>2 mentions the query</think><answer>[2] > [3] > [1]</answer>", 3)
    assert (p.order, p.status, p.reasoning) == ([1, 2, 0], "ok", "2 mentions the query")


def test_missing_duplicates_out_of_range_and_fallbacks():
    assert parse_ranking("<answer>[3] > [1]</answer>", 4).order == [2, 0, 1, 3]
    assert parse_ranking("<answer>[3] > [1]</answer>", 4).status == "missing_documents"
    p = parse_ranking("<answer>[2] > [2] > [9] > [0] > [1]</answer>", 2)
    assert (p.order, p.status) == ([1, 0], "repetition")
    # After </think> when <answer> is missing, but that is not the asked-for format.
    p = parse_ranking("<think>hmm</think> [2] > [1]", 2)
    assert (p.order, p.status) == ([1, 0], "wrong_format")
    # Without tags the RankGPT policy's plain output is fine...
    assert parse_ranking("[2] > [1]", 2, expect_tags=False).status == "ok"
    # ...but numbers in a reasoning policy's untagged prose are not a ranking.
    p = parse_ranking("Passage [2] talks about wings, [1] about heat.", 2)
    assert (p.order, p.status) == ([0, 1], "wrong_format")
    # Unclosed answer (the stop string was cut off by an API) still counts.
    assert parse_ranking("<think>x</think><answer>[2] > [1]", 2).order == [1, 0]


def test_garbage_keeps_the_input_order():
    for text in (
        "",
        "Received passage [21].",
        "no digits at all",
        "<answer></answer>",
        "9" * 5000,
        "<think>" * 100,
    ):
        p = parse_ranking(text, 5)
        assert (p.order, p.status) == ([0, 1, 2, 3, 4], "wrong_format")
    assert parse_ranking(None, 3).order == [0, 1, 2]  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(text=st.text(), n=st.integers(min_value=0, max_value=40), tags=st.booleans())
def test_any_string_yields_a_permutation(text, n, tags):
    p = parse_ranking(text, n, expect_tags=tags)
    assert sorted(p.order) == list(range(n))
    assert p.status in {"ok", "wrong_format", "repetition", "missing_documents"}


ranking_like = st.lists(
    st.one_of(
        st.integers(-5, 60).map(lambda i: f"[{i}]"),
        st.sampled_from(
            [" > ", ">", ", ", "<answer>", "</answer>", "<think>", "</think>", " text "]
        ),
    ),
    max_size=60,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(text=ranking_like, n=st.integers(min_value=1, max_value=30))
def test_ranking_like_strings_yield_a_permutation(text, n):
    assert sorted(parse_ranking(text, n).order) == list(range(n))
