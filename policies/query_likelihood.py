"""`query-likelihood`: UPR (Sachan et al., 2022; "open-source LLMs are zero-shot query likelihood
models"). Each passage is scored alone by the mean log-probability of the query as the model's
reply to "Passage: … Please write a question based on this passage." One forward pass per
passage, no decoding, no output to parse: a model that cannot follow a ranking format (the
bundled 135M) can still read which passage makes the question likely. Local models only.
"""

from rearag.policies.policy import Policy

POLICY = Policy(
    name="query-likelihood",
    description="UPR: order by log P(query | passage) under the model (local models only)",
    kind="likelihood",
    final_instruction="Passage: {passage}\nPlease write a question based on this passage.",
)
