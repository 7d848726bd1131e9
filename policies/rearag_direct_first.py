"""`rearag-direct-first`: FIRST (Reddy et al., 2024) on a `rearag-direct` policy. The same
prompt, then one forward pass with the answer opened (`<answer>[`); passages are ordered by
the logit of their identifier as the next token. No decoding: a window costs its prefill.

A policy trained with `rearag-direct` ranks this way without retraining: its first answer
token is the passage it judges best, and the logits of the others say how close they came.
Identifiers are single digits, so at most 9 passages a window. Local models only.
"""

from rearag.policies import rearag_direct
from rearag.policies.policy import Policy

POLICY = Policy(
    name="rearag-direct-first",
    description="FIRST on the rearag-direct prompt: first-token logits, no decoding (local)",
    kind="logits",
    system=rearag_direct.SYSTEM,
    final_instruction=rearag_direct.FINAL,
    assistant_prefix="<answer>[",
    max_window=9,
)
