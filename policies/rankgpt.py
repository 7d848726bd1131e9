"""`rankgpt`: the RankGPT listwise prompt, a permutation without reasoning (for ablations and
API models)."""

from rearag.policies.policy import Policy
from rearag.policies.prompts import Message, listwise_messages

SYSTEM = (
    "You are RankGPT, an intelligent assistant that can rank passages based on their "
    "relevancy to the query."
)
FINAL = (
    "Search Query: {query}.\nRank the {n} passages above based on their relevance to the "
    "search query. List them in descending order using their identifiers, the most relevant "
    "first, in the format [i] > [j] > ... Only respond with the ranking, do not explain."
)


def build(query: str, passages: list[str], labels: list[str], max_chars: int) -> list[Message]:
    return listwise_messages(
        system=SYSTEM,
        query=query,
        passages=passages,
        labels=labels,
        final_instruction=FINAL,
        max_chars=max_chars,
    )


POLICY = Policy(
    name="rankgpt",
    description="RankGPT prompt: permutation only, no reasoning",
    kind="generate",
    build=build,
    max_new_tokens=160,
)
