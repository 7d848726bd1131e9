"""`first-token`: the FIRST method. One forward pass over the RankGPT prompt; candidates are
ordered by the logit of their identifier as the first token of the answer. No decoding.

Identifiers are letters so that each is a single token ("10" would share its first token
with "1"); hence at most 26 passages per window. Local backends only.
"""

import string

from rearag.policies import rankgpt
from rearag.policies.policy import Policy


def letter_labels(n: int) -> list[str]:
    return list(string.ascii_uppercase[:n])


POLICY = Policy(
    name="first-token",
    description="FIRST: order by first-token logits of the identifiers (local models only)",
    kind="logits",
    system=rankgpt.SYSTEM,
    final_instruction=rankgpt.FINAL,
    labels=letter_labels,
    assistant_prefix="[",
    max_window=26,
)
