"""`rearag-reasoning`: the REARANK prompt. The model reasons inside <think> and answers with a
permutation inside <answer>; decoding stops at </answer>."""

from rearag.policies.policy import Policy

SYSTEM = (
    "You are DeepRerank, an intelligent assistant that ranks passages by their relevance to "
    "a search query. You first think about the reasoning process and then give the answer."
)
# A placeholder, not a concrete ranking: small models copy a concrete example verbatim.
FINAL = (
    'Rank the {n} passages above by their relevance to the search query: "{query}".\n'
    "First analyse the passages inside <think> </think>. Then give only the ranking, most "
    "relevant first, using the identifiers, inside <answer> </answer>, in the format "
    "<answer>[i] > [j] > ...</answer>."
)

POLICY = Policy(
    name="rearag-reasoning",
    description="REARANK prompt: reason in <think>, permutation in <answer> (trainable by GRPO)",
    kind="generate",
    system=SYSTEM,
    final_instruction=FINAL,
    max_new_tokens=384,
    stop=("</answer>",),
    expect_tags=True,
)
