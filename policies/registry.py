"""Reranker policies by name."""

from rearag.core.errors import InvalidInputError
from rearag.policies import (
    first_stage,
    first_token,
    query_likelihood,
    rankgpt,
    rearag_direct,
    rearag_direct_first,
    rearag_reasoning,
)
from rearag.policies.policy import Policy

POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        rearag_reasoning.POLICY,
        rearag_direct.POLICY,
        rearag_direct_first.POLICY,
        rankgpt.POLICY,
        first_token.POLICY,
        query_likelihood.POLICY,
        first_stage.POLICY,
    )
}


def get_policy(name: str) -> Policy:
    if name not in POLICIES:
        raise InvalidInputError(f"unknown policy {name!r}: use one of {', '.join(POLICIES)}")
    return POLICIES[name]
