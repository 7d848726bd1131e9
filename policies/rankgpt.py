"""`rankgpt`: the RankGPT listwise prompt, a permutation without reasoning (for ablations and
API models)."""

from rearag.policies.policy import Policy

SYSTEM = (
    "You are RankGPT, an intelligent assistant that can rank passages based on their "
    "relevancy to the query."
)
FINAL = (
    "Search Query: {query}.\nRank the {n} passages above based on their relevance to the "
    "search query. List them in descending order using their identifiers, the most relevant "
    "first, in the format [i] > [j] > ... Only respond with the ranking, do not explain."
)

POLICY = Policy(
    name="rankgpt",
    description="RankGPT prompt: permutation only, no reasoning",
    kind="generate",
    system=SYSTEM,
    final_instruction=FINAL,
    max_new_tokens=160,
)
