"""`rearag-direct`: the REARANK prompt without the reasoning. The model answers with the
permutation inside <answer> at once; decoding stops at </answer>.

Rerankers without chain-of-thought match or beat reasoning ones (TFRank; arXiv 2510.08985), and
a small model's reasoning is mostly noise that costs ~0.1 s a token on a CPU: a window here
costs its prefill and a dozen tokens, so a GRPO step takes seconds and a CPU run sees hundreds
of queries instead of dozens."""

from rearag.policies.policy import Policy

SYSTEM = (
    "You are DeepRerank, an intelligent assistant that ranks passages by their relevance to "
    "a search query."
)

# A placeholder, not a concrete ranking: small models copy a concrete example verbatim.
FINAL = (
    'Rank the {n} passages above by their relevance to the search query: "{query}".\n'
    "Give only the ranking, most relevant first, using the identifiers, inside "
    "<answer> </answer>, in the format <answer>[i] > [j] > ...</answer>."
)

POLICY = Policy(
    name="rearag-direct",
    description="REARANK prompt without <think>: the permutation in <answer> at once (trainable)",
    kind="generate",
    system=SYSTEM,
    final_instruction=FINAL,
    max_new_tokens=96,
    stop=("</answer>",),
    expect_tags=True,
    think=False,
)
