"""The listwise chat prompt of the LLM policies: RankGPT's turn layout, the REARANK
instruction, and each policy's identifiers."""

from __future__ import annotations

from rearag.policies import POLICIES


def test_rearank_prompt_layout():
    msgs = POLICIES["rearag-reasoning"].messages("what is lift?", ["wings", "tails"], 400)
    assert [m["role"] for m in msgs] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert "reasoning" in msgs[0]["content"]
    assert msgs[3]["content"] == "[1] wings" and msgs[4]["content"] == "Received passage [1]."
    assert msgs[5]["content"] == "[2] tails"
    final = msgs[-1]["content"]
    assert "<think>" in final and "<answer>" in final and "what is lift?" in final
    assert "[1] > [2]" not in final  # a concrete example would be copied by small models
    letters = POLICIES["first-token"].messages("q", ["a", "b", "c"], 400)
    assert letters[3]["content"] == "[A] a" and letters[7]["content"] == "[C] c"
