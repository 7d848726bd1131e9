"""`first-stage`: keep the retriever's order. The baseline every other policy must beat."""

from rearag.policies.policy import Policy

POLICY = Policy(
    name="first-stage",
    description="first-stage order, no model (baseline)",
    kind="none",
)
